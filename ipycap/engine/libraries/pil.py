"""Pillow: images; Image.open and save go through Python-level opens (checked)."""

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
    replaced={"PIL.Image.registered_extensions": "copy_result"},
    unchecked="decoders are C code; the paths they read are checked before they open",
    evaluators={"PIL.ImageMath.unsafe_eval": "refused (PIL.ImageMath.unsafe_eval, .eval)"},
)
