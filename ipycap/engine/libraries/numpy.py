"""numpy: computation is granted; raw memory, pickles and the global print options are not."""

from .profile import PathArg, Profile

_PATH = PathArg(0, "file")

PROFILE = Profile(
    package="numpy",
    summary="arrays and vector math; file I/O only on granted paths",
    readonly={"numpy:ndarray": "numpy_array"},
    stdlib=("importlib.metadata",),
    registers={
        "numpy.lib.add_docstring": "the docstrings of numpy's objects",
        "numpy.lib.add_newdoc": "the docstrings of numpy's objects",
    },
    refused={
        "numpy.memmap": "it memory-maps a file (mmap is refused in capsules)",
        "numpy.ctypeslib": "it turns raw addresses into arrays (any memory of the process)",
    },
    object_attrs={
        "ctypes": "an array's ctypes view hands out its raw memory address",
    },
    reads={
        "numpy.fromfile": _PATH,
        "numpy.load": _PATH,
        "numpy.loadtxt": PathArg(0, "fname"),
        "numpy.genfromtxt": PathArg(0, "fname"),
    },
    writes={
        "numpy.save": _PATH,
        "numpy.savez": _PATH,
        "numpy.savez_compressed": _PATH,
        "numpy.savetxt": PathArg(0, "fname"),
    },
    options={
        "numpy.set_printoptions": "with np.printoptions(precision=3): ...",
    },
    replaced={
        "numpy.load": "numpy_load",
        "numpy.lib.stride_tricks.as_strided": "as_strided",
        "numpy.printoptions": "printoptions",
    },
    tables={
        "numpy:finfo._finfo_cache": "dtype -> the finfo np.finfo hands out",
        "numpy:iinfo._min_vals": "iinfo's cache",
        "numpy:iinfo._max_vals": "iinfo's cache",
        "numpy.polynomial._polybase:ABCPolyBase._subscript_mapping": "polynomial printing",
        "numpy.polynomial._polybase:ABCPolyBase._superscript_mapping": "polynomial printing",
        "numpy.ma.core:masked._basedict": "np.ma.masked, one object everybody shares",
        "numpy.ma.core:masked._optinfo": "np.ma.masked, one object everybody shares",
    },
)
