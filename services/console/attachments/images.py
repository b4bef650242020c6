"""Photos checked and cleaned before they are stored: the bytes must be the image type they
claim (decoded, not trusted from a header), not too many pixels, and their EXIF GPS block and
XMP packet (which can repeat the location) go; the rest of the EXIF (orientation, time) stays.
Pure: bytes in, bytes out, so the same photo always cleans to the same bytes and hash."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from shared.errors import InvalidArgument

# What a phone's camera gives a web page, by the format Pillow reads in the bytes.
MEDIA_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_PIXELS = 50_000_000  # a 48 MP phone camera fits; a decompression bomb does not
GPS_IFD = 0x8825


@dataclass(frozen=True)
class Cleaned:
    data: bytes
    media_type: str
    sha256: str
    width: int
    height: int


def clean(data: bytes, media_type: str) -> Cleaned:
    """The photo without its location, or InvalidArgument saying what is wrong with it."""
    media_type = (media_type or "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise InvalidArgument(f"a photo must be one of {', '.join(MEDIA_TYPES)}, not {media_type or 'untyped'}")
    if not data:
        raise InvalidArgument("the photo is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[MEDIA_TYPES[media_type]]) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise InvalidArgument(f"the photo has {image.width}x{image.height} pixels; "
                                          f"at most {MAX_PIXELS // 1_000_000} million")
                image.load()
                out = _without_location(image, MEDIA_TYPES[media_type])
                size = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidArgument(f"the bytes are not a readable {media_type} photo") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise InvalidArgument(f"the photo could not be read: {exc}") from None
    return Cleaned(out, media_type, hashlib.sha256(out).hexdigest(), *size)


def _without_location(image: Image.Image, fmt: str) -> bytes:
    exif = image.getexif()
    exif.get_ifd(GPS_IFD)  # loads the block so that deleting it drops it from the output
    exif.pop(GPS_IFD, None)
    params: dict = {"exif": exif.tobytes()} if len(exif) else {}
    if image.info.get("icc_profile"):
        params["icc_profile"] = image.info["icc_profile"]
    out = io.BytesIO()
    if fmt == "JPEG":
        # The camera's quantisation tables: no visible loss from the re-encoding.
        image.save(out, "JPEG", quality="keep" if image.format == "JPEG" else 90, **params)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=False, **params)
    else:
        image.save(out, "WEBP", lossless=image.info.get("lossless", False), quality=90, **params)
    return out.getvalue()


def location_of(data: bytes) -> dict:
    """The EXIF GPS tags left in a photo (empty when none): for checks and tests."""
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(GPS_IFD))
