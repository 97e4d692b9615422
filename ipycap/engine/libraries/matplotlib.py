"""matplotlib: figures and savefig on granted paths; its fonts and mpl-data are its own;
global rc settings only per block."""

from .profile import Profile

_PLOTS = (
    "plot",
    "scatter",
    "bar",
    "barh",
    "hist",
    "boxplot",
    "fill_between",
    "step",
    "stem",
    "errorbar",
    "pie",
    "imshow",
    "violinplot",
)

PROFILE = Profile(
    package="matplotlib",
    summary="figures and plots; savefig only to granted paths; rc settings per block",
    loads=(
        "PIL",
        "matplotlib_inline",
        "numpy",
        "kiwisolver",
        "pyparsing",
        "cycler",
        "dateutil",
        "fontTools",
        "packaging",
        "contourpy",
        "pandas",
    ),
    stdlib=(
        "importlib.metadata",
        "importlib.resources",
        "importlib.readers",
        "importlib.util",
        "importlib.machinery",
    ),
    options={
        "matplotlib.rc": "with plt.rc_context({'lines.linewidth': 2}): ...",
        "matplotlib.pyplot.rc": "with plt.rc_context({'lines.linewidth': 2}): ...",
        "matplotlib.rcdefaults": "with plt.rc_context(): ...",
        "matplotlib.pyplot.rcdefaults": "with plt.rc_context(): ...",
        "matplotlib.rc_file": "with plt.rc_context(fname=...): ...",
        "matplotlib.use": "the backend is the notebook's",
        "matplotlib.pyplot.switch_backend": "the backend is the notebook's",
        "matplotlib.style.use": "with plt.style.context('ggplot'): ...",
        "matplotlib.pyplot.style.use": "with plt.style.context('ggplot'): ...",
    },
    replaced={
        # protected DataFrames/Series plotted: deep copies (wrappers.copies_protected)
        **{
            key: "copies_protected"
            for n in _PLOTS
            for key in (f"matplotlib.pyplot.{n}", f"matplotlib.axes._axes:Axes.{n}")
        },
        "matplotlib.rcParams": "read_only_rc",
        "matplotlib.pyplot.rcParams": "read_only_rc",
    },
    unchecked="savefig opens files from Python, where the tripwire checks them",
)
