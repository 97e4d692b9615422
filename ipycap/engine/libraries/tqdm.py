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
    # Frozen like every profiled library's classes: unfrozen, a capsule's
    # 'tqdm.format_meter = spy' received the description and counts of every trusted bar
    # drawn later (I3).  tqdm writes to its class at run time only to create its write lock
    # and its monitor thread: the lock is made before the class is frozen and the monitor
    # is switched off (wrappers._prepare_tqdm; tqdm.monitor_interval = 0, as users do).
    # Every live bar, walked by tqdm.write() and the monitor: per capsule, so a capsule
    # never reads the user's bars (their iterable: a trusted file) and trusted writes never
    # compare the user's stream with a capsule bar's file.
    instance_tables=("tqdm.std:tqdm._instances",),
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
    evaluators={
        "tqdm.contrib.concurrent._get_interpreter_init": (
            "builds a subinterpreter's start-up source from tqdm's class name and sys.path "
            "(no capsule text)"
        ),
    },
    tables={
        "tqdm._monitor:TMonitor._test": "test hooks the monitor thread calls (time, Event)",
        "tqdm.std:Bar.COLOURS": "colour names -> escape codes every bar writes",
    },
)
