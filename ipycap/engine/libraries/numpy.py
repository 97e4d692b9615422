"""numpy: computation is granted; raw memory, pickles and the global print options are not."""

from .profile import PathArg, Profile

_PATH = PathArg(0, "file")

#: The legacy functions of ``numpy.random`` using the global ``RandomState`` (per capsule:
#: randomstate.py).
LEGACY = (
    *(
        "beta binomial bytes chisquare choice dirichlet exponential f gamma geometric "
        "get_state gumbel hypergeometric laplace logistic lognormal logseries multinomial "
        "multivariate_normal negative_binomial noncentral_chisquare noncentral_f normal "
        "pareto permutation poisson power rand randint randn random random_integers "
        "random_sample rayleigh set_state shuffle standard_cauchy standard_exponential "
        "standard_gamma standard_normal standard_t triangular uniform vonmises wald weibull "
        "zipf seed ranf sample get_bit_generator set_bit_generator"
    ).split(),
)


PROFILE = Profile(
    package="numpy",
    summary="arrays and vector math; file I/O only on granted paths",
    readonly={"numpy:ndarray": "numpy_array"},
    derived={"numpy:ndarray": "numpy_result", "numpy:flatiter": "numpy_result"},
    stdlib=("importlib.metadata",),
    registers={
        "numpy.lib.add_docstring": "the docstrings of numpy's objects",
        "numpy.lib.add_newdoc": "the docstrings of numpy's objects",
    },
    refused={
        "numpy.memmap": "it memory-maps a file (mmap is refused in capsules)",
        "numpy.ctypeslib": "it turns raw addresses into arrays (any memory of the process)",
        "numpy.testing.runstring": "it execs a string in numpy's frame (real builtins)",
        "numpy.testing.measure": "it compiles a string past the gate and execs it",
        "numpy.f2py": "it builds and loads compiled extensions; its Fortran reader evals text",
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
        "numpy.polynomial.set_default_printstyle": "format(p, 'ascii') or format(p, "
        "'unicode') for one polynomial",
    },
    not_options={
        "numpy.ma.set_fill_value": "sets the fill value of the masked array given",
        "numpy.ma.core.set_module": "a decorator setting __module__ of the function given",
    },
    replaced={
        "numpy.load": "numpy_load",
        "numpy.lib.stride_tricks.as_strided": "as_strided",
        "numpy.printoptions": "printoptions",
        # the legacy global RandomState: the capsule's own (randomstate.py)
        **{f"numpy.random.{name}": "per_capsule_random" for name in LEGACY},
    },
    # finfo objects are cached on the class and have writable attributes: per capsule, so a
    # capsule's 'np.finfo(float).eps = 0' never reaches trusted code's finfo.
    instance_tables=("numpy:finfo._finfo_cache",),
    evaluators={
        "numpy.testing._private.utils.runstring": "refused (numpy.testing.runstring)",
        "numpy.testing._private.utils.measure": "refused (numpy.testing.measure)",
        **{
            f"numpy.f2py.{name}": "refused (numpy.f2py)"
            for name in (
                "auxfuncs.l_and",
                "auxfuncs.l_or",
                "auxfuncs.l_not",
                "capi_maps.load_f2cmap_file",
                "capi_maps.getarrdims",
                "capi_maps.getinit",
                "crackfortran.analyzeline",
                "crackfortran.myeval",
                "crackfortran._eval_scalar",
                "crackfortran.analyzevars",
                "crackfortran.param_eval",
                "crackfortran.vars2fortran",
            )
        },
    },
    tables={
        "numpy:iinfo._min_vals": "iinfo's cache",
        "numpy:iinfo._max_vals": "iinfo's cache",
        "numpy.polynomial._polybase:ABCPolyBase._subscript_mapping": "polynomial printing",
        "numpy.polynomial._polybase:ABCPolyBase._superscript_mapping": "polynomial printing",
        "numpy.ma.core:masked._basedict": "np.ma.masked, one object everybody shares",
        "numpy.ma.core:masked._optinfo": "np.ma.masked, one object everybody shares",
    },
)
