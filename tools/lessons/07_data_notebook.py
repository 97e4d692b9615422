"""Lesson 07: a data notebook in a capsule: CSV in with pandas, a groupby, a plot, and a
refused exfiltration through a library's native I/O (polars)."""

from build_notebooks import code, md

NAME = "07-data-notebook"
KERNEL = "python3"

CELLS = [
    md(
        """
        # 07 · A data notebook in a capsule

        The data person of lesson 01 wants to run an analysis they did not write: read a CSV,
        group it, plot it. They grant exactly that, `--allow-import pandas,matplotlib` and
        `--allow-read data/`, and expect the real libraries to just work.

        Granting a library trusts **its code**, not the capsule's use of it. ipycap keeps a
        **profile** for each supported library (numpy, pandas with pyarrow, matplotlib,
        scikit-learn, polars, pyarrow, PIL, tqdm): a grant covers what the library loads and
        reads *on its own behalf* (pyarrow under pandas, matplotlib's fonts), while what a
        capsule could abuse it for is checked or refused: native file I/O is checked against
        the grants, pickle loaders and raw memory are refused, global options are per block.
        """
    ),
    code("%load_ext ipycap"),
    md("A trusted cell builds a scratch project: sales figures, and a private token."),
    code(
        """
        import os
        import tempfile

        project = tempfile.mkdtemp(prefix="ipycap-lesson-")
        os.chdir(project)
        os.makedirs("data")
        os.makedirs("private")
        with open("data/sales.csv", "w") as f:
            f.write("region,month,sales\\nnorth,jan,120\\nsouth,jan,80\\nnorth,feb,150\\nsouth,feb,95\\n")
        with open("private/token.txt", "w") as f:
            f.write("region\\nCANARY-TOKEN-not-for-capsules\\n")
        sorted(os.listdir("."))
        """
    ),
    md(
        """
        ## CSV in

        `pd.read_csv` of a granted file. pandas 3 reads it with help from pyarrow, which it
        imports lazily: the grant of pandas covers that, without the capsule being able to
        `import pyarrow` itself. The table is rendered as HTML, sanitised (tables and text
        formatting only).
        """
    ),
    code(
        """
        %%capsule --allow-import pandas --allow-read data/ --export sales
        import pandas as pd
        sales = pd.read_csv("data/sales.csv")
        sales
        """,
        "check",
        id="read-csv",
    ),
    md("## A groupby"),
    code(
        """
        %%capsule --allow-import pandas --export totals
        totals = sales.groupby("region").sales.sum()
        totals.to_dict()
        """,
        "check",
        id="groupby",
    ),
    md(
        """
        ## A plot

        matplotlib draws with its own fonts and data files; reading them is the library's
        own business and is covered by the grant. Saving the figure is the capsule's: it
        needs a write grant on the folder. (This cell builds a `Figure` and shows the saved
        PNG; `plt.plot` shown inline through the notebook's backend comes with the display
        work of the boundary issue.)
        """
    ),
    code(
        """
        %%capsule --allow-import pandas,matplotlib --allow-read data/ --allow-write data/
        from matplotlib.figure import Figure
        from IPython.display import Image
        fig = Figure(figsize=(4, 3))
        ax = fig.subplots()
        ax.bar(list(totals.index), list(totals.values))
        ax.set_title("sales by region")
        fig.savefig("data/totals.png")
        Image(filename="data/totals.png")
        """,
        "check",
        id="plot",
    ),
    md(
        """
        ## A refused exfiltration

        Now a snippet that tries to read the private token. `open()` would be refused at once
        (lesson 01), so it goes through **polars**, whose CSV reader is Rust code: the audit
        hook never sees those file reads. The polars profile checks the path argument against
        the grants before polars gets it.
        """
    ),
    code(
        """
        %%capsule --allow-import polars --allow-read data/
        import polars as pl
        pl.read_csv("private/token.txt")
        """,
        "check",
        "raises-exception",
        id="exfiltrate",
    ),
    md(
        """
        The refusal names the layer (the polars profile) and the exact grant that would allow
        it; nothing was read. A plain cell could read it, as any cell can in a notebook:
        the capsule is what stands between the snippet and the token.

        The registry lists what the capsules used, and what they were refused:
        """
    ),
    code("%capsule log 4", "check", id="registry"),
]
