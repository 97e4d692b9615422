"""The library matrix: operations a data notebook does with real packages, each run inside a
capsule by tests/test_libraries.py (%%capsule) and tests/kernel/test_libraries.py (the
capsule kernel).  A case is (imports granted, grants of the data folder, source, expected
text/plain of the last expression)."""

from __future__ import annotations

CSV = "k,v\na,1\nb,2\na,3\n"

#: name -> (imports, folder grants ('read', 'write'), source, expected repr)
WORKS = {
    "numpy-vector-math": (
        "numpy",
        (),
        "import numpy as np\nfloat((np.arange(10) * 2).sum())",
        "90.0",
    ),
    "pandas-read-csv-groupby": (
        "pandas",
        ("read",),
        "import pandas as pd\npd.read_csv('data/t.csv').groupby('k').v.sum().to_dict()",
        "{'a': 4, 'b': 2}",
    ),
    "pandas-pyarrow-engine": (
        "pandas",
        ("read",),
        "import pandas as pd\nint(pd.read_csv('data/t.csv', engine='pyarrow').v.sum())",
        "6",
    ),
    "pandas-query-at-name": (
        "pandas",
        (),
        "import pandas as pd\nlimit = 1\npd.DataFrame({'a': [1, 2, 3]}).query('a > @limit').a.tolist()",
        "[2, 3]",
    ),
    "pandas-eval-assign": (
        "pandas",
        (),
        "import pandas as pd\npd.DataFrame({'a': [1, 2]}).eval('b = a * 2').b.tolist()",
        "[2, 4]",
    ),
    "pandas-option-context": (
        "pandas",
        (),
        "import pandas as pd\nwith pd.option_context('display.max_rows', 5):\n"
        "    x = pd.get_option('display.max_rows')\nx",
        "5",
    ),
    "pandas-df-plot": (
        "pandas,matplotlib",
        ("read",),
        "import pandas as pd\nax = pd.read_csv('data/t.csv').plot()\ntype(ax).__name__",
        "'Axes'",
    ),
    "matplotlib-savefig": (
        "matplotlib",
        ("read", "write"),
        "import matplotlib.pyplot as plt\nfrom pathlib import Path\nfig = plt.figure()\n"
        "plt.plot([1, 2, 3])\nfig.savefig('data/plot.png')\nplt.close(fig)\n"
        "Path('data/plot.png').read_bytes()[:4]",
        "b'\\x89PNG'",
    ),
    "matplotlib-rc-context": (
        "matplotlib",
        (),
        "import matplotlib.pyplot as plt\nwith plt.rc_context({'lines.linewidth': 3}):\n"
        "    w = plt.rcParams['lines.linewidth']\nw",
        "3.0",
    ),
    "sklearn-load-iris": (
        "sklearn",
        (),
        "from sklearn.datasets import load_iris\nload_iris().data.shape",
        "(150, 4)",
    ),
    "sklearn-fit-dataframe": (
        "sklearn,pandas",
        (),
        "import pandas as pd\nfrom sklearn.datasets import load_iris\n"
        "from sklearn.tree import DecisionTreeClassifier\niris = load_iris()\n"
        "X = pd.DataFrame(iris.data, columns=iris.feature_names)\n"
        "float(DecisionTreeClassifier(random_state=0).fit(X, iris.target).score(X, iris.target))",
        "1.0",
    ),
    "sklearn-n-jobs": (
        "sklearn",
        (),
        "from sklearn.datasets import load_iris\nfrom sklearn.ensemble import RandomForestClassifier\n"
        "iris = load_iris()\nm = RandomForestClassifier(n_estimators=4, n_jobs=2, random_state=0)\n"
        "m.fit(iris.data, iris.target).score(iris.data, iris.target) > 0.9",
        "True",
    ),
    "polars-read-csv": (
        "polars",
        ("read",),
        "import polars as pl\npl.read_csv('data/t.csv').shape",
        "(3, 2)",
    ),
    "polars-write-csv": (
        "polars",
        ("read", "write"),
        "import polars as pl\npl.DataFrame({'a': [1]}).write_csv('data/out.csv')\n"
        "open('data/out.csv').read()",
        "'a\\n1\\n'",
    ),
    "polars-config-block": (
        "polars",
        (),
        "import polars as pl\nwith pl.Config(tbl_rows=2):\n    pass\n'ok'",
        "'ok'",
    ),
    "tqdm-auto": ("tqdm", (), "from tqdm.auto import tqdm\nsum(tqdm(range(4)))", "6"),
    "pil-image": (
        "PIL",
        ("read", "write"),
        "from PIL import Image\nImage.new('RGB', (3, 2)).save('data/i.png')\n"
        "Image.open('data/i.png').size",
        "(3, 2)",
    ),
    "namedtuple-defaults": (
        "",
        (),
        "from collections import namedtuple\nP = namedtuple('P', 'x y', defaults=[0])\nP(1)",
        "P(x=1, y=0)",
    ),
    "typing-namedtuple": (
        "",
        (),
        "from typing import NamedTuple\nclass T(NamedTuple):\n    a: int\n    b: str = 'z'\nT(1)",
        "T(a=1, b='z')",
    ),
    "io-stringio-to-pandas": (
        "pandas",
        (),
        "import io\nimport pandas as pd\nint(pd.read_csv(io.StringIO('a\\n1\\n2')).a.sum())",
        "3",
    ),
    "pathlib-list-granted-folder": (
        "",
        ("read",),
        "from pathlib import Path\nsorted(p.name for p in Path('data').iterdir())",
        "['t.csv']",
    ),
    "glob-granted-folder": (
        "",
        ("read",),
        "import glob\nglob.glob('data/*.csv')",
        "['data/t.csv']",
    ),
    "os-path-exists": (
        "",
        ("read",),
        "import os.path\nos.path.join('data', 't.csv'), os.path.exists('data/t.csv')",
        "('data/t.csv', True)",
    ),
}

#: Refusals aimed at a canary outside every grant: name -> (imports, source template with
#: {canary} / {outside}, words the refusal says).  The same source reaches the canary as plain
#: Python (tests assert both: ipycap is what stops it).
CANARY = {
    "polars-read": (
        "polars",
        "import polars as pl\npl.read_csv({canary!r}, has_header=False).rows()",
        "polars profile",
    ),
    "polars-scan-glob": (
        "polars",
        "import polars as pl\npl.scan_csv({outside!r} + '/*.txt', has_header=False).collect().rows()",
        "polars profile",
    ),
    "pyarrow-csv": (
        "pyarrow",
        "import pyarrow.csv as c\nopts = c.ReadOptions(column_names=['x'])\n"
        "c.read_csv({canary!r}, read_options=opts).to_pylist()",
        "pyarrow profile",
    ),
    "pandas-read-csv": (
        "pandas",
        "import pandas as pd\npd.read_csv({canary!r}, header=None).values.tolist()",
        "read access",
    ),
    "numpy-fromfile": (
        "numpy",
        "import numpy as np\nnp.fromfile({canary!r}, dtype='u1').tobytes()",
        "read access",
    ),
    "pathlib-read": ("", "from pathlib import Path\nPath({canary!r}).read_text()", "read access"),
    "glob-outside": ("", "import glob\nglob.glob({outside!r} + '/*')", "read access"),
    "os-path-probe": (
        "",
        "import os.path\nos.path.exists({canary!r}), {canary!r}.rpartition('/')[2]",
        "read access",
    ),
}

#: Writes aimed outside every grant: the file must not appear (it does in plain Python).
CANARY_WRITES = {
    "polars-write-csv": (
        "polars",
        "import polars as pl\npl.DataFrame({{'a': [1]}}).write_csv({target!r})",
    ),
    "pandas-to-parquet": (
        "pandas",
        "import pandas as pd\npd.DataFrame({{'a': [1]}}).to_parquet({target!r})",
    ),
    "pyarrow-write-table": (
        "pyarrow",
        "import pyarrow as pa\nimport pyarrow.parquet as pq\npq.write_table(pa.table({{'a': [1]}}), {target!r})",
    ),
    "numpy-save": ("numpy", "import numpy as np\nnp.save({target!r}, np.arange(3))"),
}

#: Refusals a profile makes: name -> (imports, source, words the refusal says).
REFUSED = {
    "numpy-ctypes": ("numpy", "import numpy as np\nnp.arange(3).ctypes.data", "numpy profile"),
    "numpy-ctypes-getattr": (
        "numpy",
        "import numpy as np\ngetattr(np.arange(3), 'ctypes')",
        "numpy profile",
    ),
    "numpy-ctypeslib": ("numpy", "import numpy as np\nnp.ctypeslib", "numpy profile"),
    "numpy-as-strided-out-of-bounds": (
        "numpy",
        "import numpy as np\nnp.lib.stride_tricks.as_strided(np.arange(3), shape=(10**6,), strides=(8,))",
        "outside the array's memory",
    ),
    "numpy-load-pickle": (
        "numpy",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
        "unpickling",
    ),
    "numpy-set-printoptions": (
        "numpy",
        "import numpy as np\nnp.set_printoptions(precision=1)",
        "np.printoptions",
    ),
    "numpy-printoptions-formatter": (
        "numpy",
        "import numpy as np\nwith np.printoptions(formatter={{'int': str}}):\n    pass",
        "formatter",
    ),
    "pandas-read-pickle": ("pandas", "import pandas as pd\npd.read_pickle('x.pkl')", "unpickling"),
    "pandas-to-pickle": (
        "pandas",
        "import pandas as pd\npd.DataFrame().to_pickle('x.pkl')",
        "pickling",
    ),
    "pandas-set-option": (
        "pandas",
        "import pandas as pd\npd.set_option('display.max_rows', 1)",
        "option_context",
    ),
    "pandas-options-object": ("pandas", "import pandas as pd\npd.options", "whole session"),
    "pandas-query-dunder": (
        "pandas",
        "import pandas as pd\npd.DataFrame({{'a': [1]}}).query('a.__class__.__name__ == 1')",
        "guard protects",
    ),
    "pandas-eval-level": ("pandas", "import pandas as pd\npd.eval('1', level=3)", "frames outside"),
    "pandas-class-frozen": (
        "pandas",
        "import pandas as pd\npd.DataFrame.to_csv = print",
        "immutable type",
    ),
    "pyarrow-needs-own-grant": ("pandas", "import pyarrow", "--allow-import pyarrow"),
    "pyarrow-fs": ("pyarrow", "from pyarrow.fs import LocalFileSystem", "pyarrow profile"),
    "pyarrow-private-fs": ("pyarrow", "from pyarrow._fs import LocalFileSystem", "private"),
    "polars-url": (
        "polars",
        "import polars as pl\npl.read_csv('https://example.invalid/x.csv')",
        "network",
    ),
    "polars-config-setter": (
        "polars",
        "import polars as pl\npl.Config.set_tbl_rows(2)",
        "whole session",
    ),
    "matplotlib-rcparams-set": (
        "matplotlib",
        "import matplotlib.pyplot as plt\nplt.rcParams['lines.linewidth'] = 9",
        "rc_context",
    ),
    "matplotlib-use": ("matplotlib", "import matplotlib\nmatplotlib.use('agg')", "whole session"),
    "sklearn-fetch": (
        "sklearn",
        "from sklearn.datasets import fetch_openml\nfetch_openml('iris')",
        "network",
    ),
    "sklearn-set-config": (
        "sklearn",
        "import sklearn\nsklearn.set_config(assume_finite=True)",
        "config_context",
    ),
    "io-open": ("", "import io\nio.open", "has no attribute"),
    "os-itself": ("", "import os", "denied_imports"),
    "os-path-os": ("", "import os.path\nos.listdir", "has no attribute"),
}

#: A user-namespace DataFrame ``df`` (a = [1, 2, 3], b = [4.0, 5.0, 6.0]) reached through a
#: read-only proxy, handed to library calls: name -> (imports, source, expected repr).  The
#: same answers as without ipycap, and ``df`` unchanged afterwards.
USER_OBJECTS = {
    "np-array-of-df": (
        "numpy",
        "import numpy as np\nnp.array(df).tolist()",
        "[[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]",
    ),
    "np-asarray-column": ("numpy", "import numpy as np\nnp.asarray(df['a']).tolist()", "[1, 2, 3]"),
    "ufunc-on-column": (
        "numpy",
        "import numpy as np\nnp.sqrt(df['a'] * df['a']).tolist()",
        "[1.0, 2.0, 3.0]",
    ),
    "np-array-is-a-copy": (
        "numpy",
        "import numpy as np\na = np.asarray(df)\na[0, 0] = 99\n(float(a[0, 0]), int(df['a'][0]))",
        "(99.0, 1)",
    ),
    "pd-concat": (
        "pandas",
        "import pandas as pd\npd.concat([df, df]).a.tolist()",
        "[1, 2, 3, 1, 2, 3]",
    ),
    "pd-concat-result-is-own": (
        "pandas",
        "import pandas as pd\nr = pd.concat([df, df], ignore_index=True)\nr.loc[0, 'a'] = 50\n"
        "(int(r.a[0]), int(df.a[0]))",
        "(50, 1)",
    ),
    "pd-merge": ("pandas", "import pandas as pd\npd.merge(df, df, on='a').shape", "(3, 3)"),
    "pd-dataframe-of-df": (
        "pandas",
        "import pandas as pd\npd.DataFrame(df).b.sum()",
        "np.float64(15.0)",
    ),
    "plt-plot-column": (
        "matplotlib",
        "import matplotlib.pyplot as plt\nfig = plt.figure()\nline, = plt.plot(df['a'])\n"
        "plt.close(fig)\nline.get_ydata().tolist()",
        "[1, 2, 3]",
    ),
    "df-plus-one": ("", "df2 = df + 1\ndf2['a'].tolist()", "[2, 3, 4]"),
    "sum-then-inplace": ("", "s = df['a'].sum()\ns += 1\ns", "np.int64(7)"),
    "inplace-with-derived": ("", "t = 0\nfor x in df['a']:\n    t += x\nt", "6"),
    # results that share nothing the capsule could change are the capsule's own
    "df-plus-one-assign": (
        "",
        "d = df + 1\nd['a'] = 0\nd.values.tolist()",
        "[[0.0, 5.0], [0.0, 6.0], [0.0, 7.0]]",
    ),
    "df-copy-loc-assign": (
        "",
        "d = df.copy()\nd.loc[1, 'b'] = 9.5\nd['b'].tolist()",
        "[4.0, 9.5, 6.0]",
    ),
    "df-assign-then-set": ("", "d = df.assign(c=1)\nd['c'] += 1\nd['c'].tolist()", "[2, 2, 2]"),
    "df-columns-then-set": (
        "",
        "d = df[['a']]\nd['a'] = d['a'] * 10\nd['a'].tolist()",
        "[10, 20, 30]",
    ),
    "column-then-set": ("", "s = df['a']\ns[0] = 100\ns.tolist()", "[100, 2, 3]"),
    "groupby-result-set": (
        "",
        "r = df.groupby('a').sum()\nr['b'] = 0.0\nr['b'].tolist()",
        "[0.0, 0.0, 0.0]",
    ),
    "array-copy-set": (
        "",
        "a = df['b'].to_numpy().copy()\na[0] = -1\na += 1\na.tolist()",
        "[0.0, 6.0, 7.0]",
    ),
    # protected objects meeting the capsule's own library objects
    "plot-index-and-column-on-own-axes": (
        "matplotlib,numpy",
        "import numpy as np\nimport matplotlib.pyplot as plt\nfig, own = plt.subplots()\n"
        "line, = own.plot(df.index, df['a'])\nplt.close(fig)\nline.get_xydata().tolist()",
        "[[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]",
    ),
    "df-plot-on-own-axes": (
        "matplotlib",
        "import matplotlib.pyplot as plt\nfig, own = plt.subplots()\nr = df.plot(ax=own)\n"
        "df['a'].hist(ax=own)\nplt.close(fig)\n(r is own, len(own.lines), len(own.patches) > 0)",
        "(True, 2, True)",
    ),
    "column-plus-capsule-array": (
        "numpy",
        "import numpy as np\nw = np.arange(3.0)\nd = df.assign(c=w)\nw[0] = 50.0\n"
        "((df['b'] + w).tolist(), d['c'].tolist())",
        "([54.0, 6.0, 8.0], [0.0, 1.0, 2.0])",
    ),
    "array-view-stays-read-only": (
        "",
        "n = df['b'].to_numpy()\nn.flags.writeable",
        "False",
    ),
}
