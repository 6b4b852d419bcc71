"""Decoding stored image bytes for the data stage: size and pixel limits, 8-bit conversion, EXIF orientation, the
decode stage of a batch."""

from __future__ import annotations

import io
import json
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


# Extensions a folder or tar reader treats as images. Anything else named like an image (a text file called
# .jpg) is read and then rejected by the decode stage as "not_an_image".
@dataclass(frozen=True)
class DecodeOptions:
    """How images are validated and normalised.

    Args:
        min_side: Smallest accepted image side in pixels (after EXIF rotation); smaller images are rejected
            as ``image_too_small``. 256: half the 512 canvas of SD-scale training, and 2x the project's small
            models' 128 canvas; raise to 512 for SD-1.5-scale sets (MARIO-10M stores 512x512).
        max_pixels: Largest accepted ``width * height``, checked from the header before any pixel is decoded
            (decompression bombs: a few KB claiming 10^10 pixels). 50 MP is a large camera photo and ~150 MB
            of RGB in a worker.
        max_side: Downscale images whose longer side exceeds this (``None`` keeps the size). Saves disk and OCR
            time on very large inputs; the stored image is then re-encoded.
        jpeg_quality: Quality of re-encoded JPEGs (JPEG sources that needed a transform).
    """

    min_side: int = 256
    max_pixels: int = 50_000_000
    max_side: int | None = None
    jpeg_quality: int = 95

    def validate(self) -> DecodeOptions:
        if self.min_side < 1:
            raise ValueError(f"min_side must be >= 1 pixel, got {self.min_side}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        if self.max_side is not None and self.max_side < self.min_side:
            raise ValueError(f"max_side ({self.max_side}) must be >= min_side ({self.min_side})")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1-100, got {self.jpeg_quality}")
        return self


class DecodeError(ValueError):
    """Bytes that do not make an acceptable image; ``reason`` is the stats key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class DecodedImage:
    """A validated image: the bytes to store, their extension, and the decoded RGB/L pixels for the next stage."""

    data: bytes
    ext: str
    image: Image.Image
    transforms: list[str]


_KEEP_FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}


def _to_8bit(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Returns an 8-bit RGB or L image and the name of the conversion applied (``None`` when none was needed)."""
    mode = image.mode
    if mode in ("RGB", "L"):
        return image, None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(image).astype(np.float64)
        # 16-bit data spans 0-65535: a fixed scale keeps the look (a min-max stretch would brighten dark images).
        scale = 255.0 / 65535.0 if mode != "I" or arr.max(initial=0) > 255 else 1.0
        arr = np.clip(arr * scale, 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr, mode="L"), "16bit_to_8bit"
    if mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        hi = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        arr = np.clip(arr / hi * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr, mode="L"), "float_to_8bit"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))  # transparent pixels on white, as a viewer shows them
        return canvas, "alpha_to_white"
    if mode == "CMYK":
        return image.convert("RGB"), "cmyk_to_rgb"
    if mode == "P":
        return image.convert("RGB"), "palette_to_rgb"
    if mode == "1":
        return image.convert("L"), "bilevel_to_grey"
    return image.convert("RGB"), f"{mode.lower()}_to_rgb"


def decode_image(data: bytes, options: DecodeOptions | None = None) -> DecodedImage:
    """Validates and normalises one encoded image.

    Handles EXIF orientation (applied), CMYK, 16-bit, float, palette and alpha images (converted to 8-bit
    RGB or L), animated images (first frame), oversize images (checked from the header, before decoding)
    and images below the minimum side. The original bytes are kept when the file is a JPEG, PNG or WebP that
    needed no change; otherwise the image is re-encoded (JPEG sources as JPEG, everything else as PNG).

    Args:
        data: The encoded file.
        options: Limits and encoding settings.

    Returns:
        The bytes to store, their extension and the decoded image (mode RGB or L).

    Raises:
        DecodeError: with ``reason`` one of ``empty_file``, ``not_an_image``, ``too_many_pixels``,
            ``truncated``, ``unreadable_image``, ``image_too_small``.
    """
    opts = options or DecodeOptions()
    if not data:
        raise DecodeError("empty_file", "zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels is checked below
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:
        raise DecodeError("not_an_image", f"{len(data)} bytes that no image decoder recognises") from err
    except Image.DecompressionBombError as err:  # beyond Pillow's own hard limit (2x Image.MAX_IMAGE_PIXELS)
        raise DecodeError("too_many_pixels", str(err)) from err
    except Exception as err:  # corrupt headers raise all sorts (SyntaxError, struct.error, ValueError...)
        raise DecodeError("unreadable_image", f"{type(err).__name__}: {err}") from err
    width, height = image.size
    if width * height > opts.max_pixels:
        raise DecodeError("too_many_pixels", f"{width}x{height} = {width * height} pixels > {opts.max_pixels}")
    fmt = image.format or ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # within our own max_pixels
            image.load()
    except OSError as err:
        reason = "truncated" if "truncated" in str(err).lower() or "broken data" in str(err).lower() else None
        raise DecodeError(reason or "unreadable_image", f"{fmt or 'image'} {width}x{height}: {err}") from err
    except Exception as err:
        raise DecodeError(
            "unreadable_image", f"{fmt or 'image'} {width}x{height}: {type(err).__name__}: {err}"
        ) from err

    transforms: list[str] = []
    if getattr(image, "n_frames", 1) > 1:
        transforms.append("first_frame")
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is no reason to lose the image
        orientation = 1
    if orientation not in (1, None):
        image = ImageOps.exif_transpose(image)
        transforms.append("exif_transpose")
    image, conversion = _to_8bit(image)
    if conversion:
        transforms.append(conversion)
    elif fmt == "PNG" and len(data) > 24 and data[24] == 16:
        transforms.append("16bit_to_8bit")  # 48/64-bit PNGs that Pillow already read as 8-bit RGB(A)
    if opts.max_side is not None and max(image.size) > opts.max_side:
        scale = opts.max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        transforms.append("resize")
    if min(image.size) < opts.min_side:
        raise DecodeError("image_too_small", f"{image.width}x{image.height} has a side < {opts.min_side}")
    if fmt not in _KEEP_FORMATS:
        transforms.append(f"reencode_{fmt.lower() or 'unknown'}")
    if not transforms:
        return DecodedImage(data, _KEEP_FORMATS[fmt], image, transforms)
    out = io.BytesIO()
    if fmt in ("JPEG", "MPO"):
        image.save(out, format="JPEG", quality=opts.jpeg_quality)
        # JPEG is lossy: the OCR must see the pixels that are stored, so they are read back from the bytes
        image = Image.open(io.BytesIO(out.getvalue()))
        image.load()
        return DecodedImage(out.getvalue(), "jpg", image, transforms)
    image.save(out, format="PNG")
    return DecodedImage(out.getvalue(), "png", image, transforms)


def open_stored_image(data: bytes) -> Image.Image:
    """Opens bytes written by :func:`decode_image` (already validated)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def batch_len(batch: dict[str, Any]) -> int:
    return len(batch["key"])


class DecodeStage:
    """Batch stage: raw ``data`` bytes -> validated ``image`` bytes, ``image_ext``, ``width``, ``height``.

    Rows already rejected pass through untouched; rows whose bytes are not an acceptable image get ``reject``
    set to the reason. ``data`` is emptied (the stored bytes live in ``image``) to keep batches small.

    Args:
        options: Limits and encoding settings.
        keep_pixels: Also put the decoded PIL images in a ``pixels`` column, so that an in-process OCR stage
            does not decode them again (the local runner; Ray batches carry bytes only).
    """

    def __init__(self, options: DecodeOptions | None = None, keep_pixels: bool = False) -> None:
        self.options = (options or DecodeOptions()).validate()
        self.keep_pixels = keep_pixels

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        n = batch_len(batch)
        out = {k: list(v) for k, v in batch.items()}
        pixels: list[Image.Image | None] = [None] * n
        seconds = [json.loads(s) for s in out["seconds"]]
        for i in range(n):
            if out["reject"][i]:
                out["data"][i] = b""
                continue
            t0 = time.perf_counter()
            try:
                decoded = decode_image(bytes(out["data"][i]), self.options)
            except DecodeError as err:
                out["reject"][i], out["detail"][i] = err.reason, str(err)
            else:
                out["image"][i] = decoded.data
                out["image_ext"][i] = decoded.ext
                out["width"][i], out["height"][i] = decoded.image.size
                out["transforms"][i] = ",".join(decoded.transforms)
                pixels[i] = decoded.image
            out["data"][i] = b""
            seconds[i]["decode"] = round(time.perf_counter() - t0, 6)
        out["seconds"] = [json.dumps(s) for s in seconds]
        if self.keep_pixels:
            out["pixels"] = pixels
        return out
