"""Turn a /predict request body into 8x8 images in the dataset's 0..16 scale.

Accepted JSON bodies (one of):

- ``{"pixels": [64 numbers in 0..16]}`` or an 8x8 nested list;
- ``{"instances": [[64 numbers], ...]}`` for a batch (at most MAX_BATCH_SIZE);
- ``{"image_png": "<base64 PNG>"}``: any size up to MAX_PNG_SIDE, dark ink on a
  light background (a scanned or drawn digit); it is converted to greyscale,
  resized to 8x8 and inverted into the dataset's scale.

Every problem raises ``InputError`` with a message that says what to send instead.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import numpy as np

from model_server.classifier import MAX_PIXEL, PIXELS, SIDE, FloatArray

MAX_BATCH = 256
MAX_PNG_BYTES = 512 * 1024
MAX_PNG_SIDE = 1024


class InputError(ValueError):
    """A request body this service cannot classify; the message is shown to the client."""


def parse_body(body: Any, max_batch: int = MAX_BATCH) -> FloatArray:
    """An (n, 64) float array from a decoded JSON body (at most ``max_batch`` images)."""
    if not isinstance(body, dict):
        raise InputError("expected a JSON object with 'pixels', 'instances' or 'image_png'")
    given = [k for k in ("pixels", "instances", "image_png") if k in body]
    if len(given) != 1:
        raise InputError(
            "give exactly one of 'pixels' (64 values 0..16), 'instances' (a list of those) "
            f"or 'image_png' (base64 PNG); got {sorted(body) or 'none'}"
        )
    key = given[0]
    if key == "pixels":
        return _pixels(body["pixels"], "pixels")[np.newaxis, :]
    if key == "instances":
        items = body["instances"]
        if not isinstance(items, list) or not items:
            raise InputError("'instances' must be a non-empty list of images")
        if len(items) > max_batch:
            raise InputError(
                f"'instances' has {len(items)} images; at most {max_batch} per request"
            )
        return np.stack([_pixels(item, f"instances[{i}]") for i, item in enumerate(items)])
    return png_to_pixels(body["image_png"])[np.newaxis, :]


def _pixels(value: Any, where: str) -> FloatArray:
    if isinstance(value, list) and len(value) == SIDE and all(isinstance(r, list) for r in value):
        if any(len(row) != SIDE for row in value):
            raise InputError(f"'{where}' as rows must be {SIDE} rows of {SIDE} values")
        value = [v for row in value for v in row]
    if not isinstance(value, list) or len(value) != PIXELS:
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        raise InputError(f"'{where}' must be {PIXELS} numbers (or {SIDE}x{SIDE} rows); got {got}")
    out = np.empty(PIXELS, dtype=np.float64)
    for i, v in enumerate(value):
        # bool is an int subclass; true/false are not pixel values.
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InputError(f"'{where}'[{i}] must be a number, got {v!r}")
        if not 0 <= v <= MAX_PIXEL:
            raise InputError(f"'{where}'[{i}] = {v} is outside 0..{MAX_PIXEL:g}")
        out[i] = v
    return out


def png_to_pixels(value: Any) -> FloatArray:
    """A base64 PNG (dark ink, light background) as 64 values in 0..16."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(value, str) or not value:
        raise InputError("'image_png' must be a base64 string")
    if len(value) > MAX_PNG_BYTES * 4 // 3 + 4:
        raise InputError(f"'image_png' is larger than {MAX_PNG_BYTES} bytes")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("'image_png' is not valid base64") from None
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        raise InputError("'image_png' is not a PNG image")
    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as img:
            width, height = img.size
            if width > MAX_PNG_SIDE or height > MAX_PNG_SIDE:
                raise InputError(
                    f"'image_png' is {width}x{height}; at most {MAX_PNG_SIDE}x{MAX_PNG_SIDE}"
                )
            grey = img.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"'image_png' could not be decoded: {exc}") from None
    ink = 255.0 - np.asarray(grey, dtype=np.float64).reshape(PIXELS)
    result: FloatArray = ink * (MAX_PIXEL / 255.0)
    return result
