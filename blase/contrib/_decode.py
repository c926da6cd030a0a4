"""Decoding one image file, in the ``images`` source's worker processes: a light module
(numpy, Pillow, xxhash), so a worker starts fast."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["decode_image", "decode_many"]


def _to_mode(im: Any, mode: str) -> Any:
    """``im`` as an 8-bit ``L`` or ``RGB`` image: 16/32-bit greys are scaled to 8 bits,
    transparency is laid over white, palette and CMYK images are converted."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    return im.convert(mode) if im.mode != mode else im


def decode_image(path: str, size: int, mode: str) -> dict[str, Any]:
    """Read, hash, decode and resize one file: ``{"hash", "width", "height", "pixels"}``,
    or ``{"hash", "error"}`` saying what is wrong with it. Runs in the worker processes."""
    import xxhash
    from PIL import Image, UnidentifiedImageError

    with open(path, "rb") as fh:
        data = fh.read()
    digest = xxhash.xxh3_128_hexdigest(data)
    if not data:
        return {"hash": digest, "error": "is empty (0 bytes)"}
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            width, height = im.size
            small = _to_mode(im, mode).resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return {"hash": digest, "error": f"cannot be decoded as an image ({type(exc).__name__}: {exc})"}
    pixels = np.asarray(small, dtype=np.uint8)
    return {"hash": digest, "width": width, "height": height, "pixels": pixels.tobytes()}


def decode_many(paths: list[str], size: int, mode: str) -> list[dict[str, Any]]:
    return [decode_image(p, size, mode) for p in paths]


