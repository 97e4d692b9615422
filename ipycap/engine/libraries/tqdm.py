"""tqdm: text progress bars (no widgets in a capsule: tqdm.auto and tqdm.notebook give the
text bar)."""

from .profile import PathArg, Profile

PROFILE = Profile(
    package="tqdm",
    summary="text progress bars (tqdm.auto and tqdm.notebook give the text bar: no widgets)",
    stdlib=("importlib.metadata",),
    refused={
        "tqdm.contrib.telegram": "it sends to the network",
        "tqdm.contrib.discord": "it sends to the network",
        "tqdm.contrib.slack": "it sends to the network",
    },
    # tqdm keeps its write lock and its list of bars on the class at run time (cls._lock,
    # cls._instances), so frozen classes would break every bar.  What a capsule could change
    # on them is how trusted code's progress bars are drawn (text), nothing it could read.
    freeze=False,
    templates={
        "tqdm.std:tqdm.format_meter": PathArg(9, "bar_format"),  # a staticmethod
        "tqdm.std:tqdm.__init__": PathArg(15, "bar_format"),
        "tqdm.std:tqdm.__str__": "bar_format",  # bar.bar_format = ... , drawn later
    },
    replaced={
        "tqdm.auto.tqdm": "text_tqdm",
        "tqdm.auto.trange": "text_trange",
        "tqdm.notebook.tqdm": "text_tqdm",
        "tqdm.notebook.trange": "text_trange",
        "tqdm.autonotebook.tqdm": "text_tqdm",
        "tqdm.autonotebook.trange": "text_trange",
    },
)
