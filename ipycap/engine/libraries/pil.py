"""Pillow: images; Image.open and save go through Python-level opens (checked)."""

from .profile import PathArg, Profile

PROFILE = Profile(
    package="PIL",
    summary="images: open/save only on granted paths",
    loads=("numpy", "olefile", "defusedxml"),
    stdlib=("importlib.metadata",),
    refused={
        "PIL.ImageGrab": "it reads the screen and clipboard",
        "PIL.ImageShow": "it runs image viewer programs",
        "PIL.ImageWin": "it draws on windows of the desktop",
        "PIL.ImageQt": "Qt objects",
        "PIL.ImageTk": "Tk objects",
        "PIL.ImageCms": "colour profiles are read from system folders",
    },
    reads={"PIL.Image.open": PathArg(0, "fp")},
    unchecked="decoders are C code; the paths they read are checked before they open",
)
