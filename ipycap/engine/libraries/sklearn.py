"""scikit-learn: estimators and bundled datasets; network fetchers, model pickles and the
global configuration refused."""

from .profile import Profile

PROFILE = Profile(
    package="sklearn",
    summary="estimators, pipelines and the bundled datasets (load_iris...)",
    loads=(
        "numpy",
        "scipy",
        "joblib",
        "threadpoolctl",
        "narwhals",
        "pandas",
        "polars",
        "pyarrow",
        "matplotlib",
    ),
    stdlib=(
        "importlib.metadata",
        "importlib.resources",
        "importlib.readers",
        "multiprocessing.dummy",
        "multiprocessing.pool",
        "concurrent.futures",
        "csv",
        "gzip",
    ),
    refused={
        **{
            f"sklearn.datasets.{name}": "it downloads from the network"
            for name in (
                "fetch_openml",
                "fetch_california_housing",
                "fetch_covtype",
                "fetch_kddcup99",
                "fetch_lfw_pairs",
                "fetch_lfw_people",
                "fetch_olivetti_faces",
                "fetch_rcv1",
                "fetch_species_distributions",
                "fetch_20newsgroups",
                "fetch_20newsgroups_vectorized",
                "fetch_file",
            )
        },
        "sklearn.utils.parallel": "it runs callables on worker threads and processes, "
        "outside the capsule's checks (n_jobs of estimators runs in the capsule)",
    },
    # ended with the capsule run that entered it (blocks.py): its exit writes sklearn's
    # thread-local configuration of whichever thread runs it (a garbage-collected generator's)
    replaced={
        "sklearn.config_context": "scoped_block",
        # for "no seed", numpy's global RandomState itself: the capsule's own (randomstate.py)
        "sklearn.utils.check_random_state": "capsule_random_state",
        "sklearn.utils.validation.check_random_state": "capsule_random_state",
    },
    options={
        "sklearn.set_config": "with sklearn.config_context(assume_finite=True): ...",
    },
    not_registries={
        "sklearn.preprocessing.add_dummy_feature": "returns a copy of the data with a column",
    },
    unchecked="estimators with n_jobs > 1 run their workers one after another in a capsule",
    evaluators={
        "sklearn.externals.array_api_compat._internal.clone_module": (
            "execs 'from M import *' for a module name of its own (no capsule text)"
        ),
    },
    tables={
        "sklearn:*._sklearn_auto_wrap_output_keys": "the methods every new transformer class "
        "gets wrapped",
        "sklearn:*._parameter_constraints": "parameter -> the constraints (objects, callables) "
        "every fit validates with",
        "sklearn:*.loss_functions": "loss name -> the loss class SGD instantiates",
        "sklearn:*._sparse_kernels": "kernel names",
        "sklearn:*._*__metadata_request__*": "metadata routing every fit consults",
    },
)
