"""Pillow: images; Image.open and save go through Python-level opens (checked).

Given a file object, Pillow's C encoders and decoders read or write the descriptor number
``fp.fileno()`` gives (``ImageFile._encode_tile``: ``encode_to_file(fh)``; the libtiff and
jpeg2k codecs get it in their arguments), where no audit event is raised: those numbers are
checked by :func:`install_descriptor_checks` (ipycap.engine.fds, red team 8 finding 1).
"""

import sys

from .profile import PathArg, Profile

PROFILE = Profile(
    package="PIL",
    summary="images: open/save only on granted paths",
    loads=("numpy", "olefile", "defusedxml"),
    stdlib=("importlib.metadata",),
    not_options={"PIL.ImagePalette.random": "returns a new random palette"},
    refused={
        "PIL.ImageGrab": "it reads the screen and clipboard",
        "PIL.ImageShow": "it runs image viewer programs",
        "PIL.ImageWin": "it draws on windows of the desktop",
        "PIL.ImageQt": "Qt objects",
        "PIL.ImageTk": "Tk objects",
        "PIL.ImageCms": "colour profiles are read from system folders",
        "PIL.ImageMath.unsafe_eval": "it evals a string with Python's eval (use lambda_eval)",
        "PIL.ImageMath.eval": "it evals a string with Python's eval (use lambda_eval)",
    },
    reads={"PIL.Image.open": PathArg(0, "fp")},
    registers={
        f"PIL.Image.{name}": "PIL's image formats (Image.open and save use them for every file)"
        for name in (
            "register_open",
            "register_mime",
            "register_save",
            "register_save_all",
            "register_extension",
            "register_extensions",
            "register_decoder",
            "register_encoder",
        )
    }
    | {
        f"PIL.{plugin}.register_handler": f"the handler PIL opens and saves every "
        f"{plugin[:-11]} file with"
        for plugin in (
            "BufrStubImagePlugin",
            "GribStubImagePlugin",
            "Hdf5StubImagePlugin",
            "WmfImagePlugin",
        )
    },
    tables={
        "PIL.TiffImagePlugin:ImageFileDirectory_v2._load_dispatch": "tag type -> the function "
        "every TIFF read calls",
        "PIL.TiffImagePlugin:ImageFileDirectory_v2._write_dispatch": "tag type -> the "
        "function every TIFF write calls",
        "PIL.TiffImagePlugin:AppendingTiffWriter.Tags": "TIFF tags",
        "PIL.TiffImagePlugin:AppendingTiffWriter.fieldSizes": "TIFF field sizes",
        "PIL.BmpImagePlugin:BmpImageFile.COMPRESSIONS": "BMP decoding",
        "PIL.EpsImagePlugin:EpsImageFile.mode_map": "EPS decoding",
        "PIL.IcnsImagePlugin:IcnsFile.SIZES": "ICNS decoding",
        "PIL.PdfParser:PdfName.allowed_chars": "PDF writing",
        "PIL.PdfParser:PdfParser.escaped_chars": "PDF writing",
        "PIL.QoiImagePlugin:QoiDecoder._previously_seen_pixels": "QOI decoding",
        "PIL.QoiImagePlugin:QoiEncoder._previously_seen_pixels": "QOI encoding",
    },
    shared={"PIL.Image:Image().info": "one image object's own metadata"},
    not_registries={
        "PIL.Image.registered_extensions": "a reader (it gets a copy)",
        "PIL.ImageChops.add_modulo": "arithmetic on the images given",
    },
    replaced={
        "PIL.Image.registered_extensions": "copy_result",
        "PIL.Image:Image.save": "writes_file_object",
    },
    unchecked="decoders are C code; the paths they read are checked before they open",
    evaluators={"PIL.ImageMath.unsafe_eval": "refused (PIL.ImageMath.unsafe_eval, .eval)"},
)


#: codec name -> where its descriptor number is ("args" | "extra", index) and the largest
#: value that means "no descriptor" (libtiff: 0 or False; jpeg2k: -1)
_DECODER_FDS = {"libtiff": ("args", 1, 0), "jpeg2k": ("args", 3, -1)}
_ENCODER_FDS = {"libtiff": ("args", 1, 0), "jpeg2k": ("extra", 13, -1)}
_PATCHED: set = set()


def _fd_at(where, args, extra):
    source = args if where[0] == "args" else extra
    if type(source) is not tuple or len(source) <= where[1]:
        return None
    number = source[where[1]]
    if type(number) is not int or number <= where[2]:  # False (a bool), -1, libtiff's 0
        return None
    return number


def _codec(real, table, kind, what):
    from .. import fds

    def get(mode, name, args, extra=()):
        if fds.armed() and type(name) is str and name in table:
            number = _fd_at(table[name], args, extra)
            if number is not None:
                fds.check(number, what, kinds=(kind,), frame=sys._getframe())
        return real(mode, name, args, extra)

    get.__name__, get.__qualname__, get.__doc__ = real.__name__, real.__qualname__, real.__doc__
    get.__module__ = real.__module__
    return get


def _encode_tile(real):
    from .. import fds

    def encode_tile(im, fp, tile, bufsize, fh, exc=None):
        if fds.armed() and fh is not None:
            fds.check(fh, "PIL's encoder", kinds=("write",), frame=sys._getframe())
        return real(im, fp, tile, bufsize, fh, exc)

    encode_tile.__name__, encode_tile.__qualname__ = real.__name__, real.__qualname__
    encode_tile.__doc__, encode_tile.__module__ = real.__doc__, real.__module__
    return encode_tile


def install_descriptor_checks() -> None:
    """Check, in Pillow's own modules, every descriptor number its C codecs are given."""
    image, imagefile = sys.modules.get("PIL.Image"), sys.modules.get("PIL.ImageFile")
    if image is not None and "image" not in _PATCHED:
        _PATCHED.add("image")
        image._getdecoder = _codec(image._getdecoder, _DECODER_FDS, "read", "PIL's decoder")
        image._getencoder = _codec(image._getencoder, _ENCODER_FDS, "write", "PIL's encoder")
    if imagefile is not None and "imagefile" not in _PATCHED:
        _PATCHED.add("imagefile")
        imagefile._encode_tile = _encode_tile(imagefile._encode_tile)
