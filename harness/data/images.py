"""Turn any chart image into 8-bit RGB, because every model processor expects RGB.

PIL's own ``convert("RGB")`` is wrong for two families that occur in chart data:

* transparent images (RGBA, LA, PA, premultiplied RGBa/La, P or L/RGB with a ``transparency``
  key): ``convert`` drops alpha, so transparent pixels become whatever colour was stored under
  them (often black). Charts are drawn for a white page, so we composite on white.
* high-bit-depth images ("I;16*", "I", "F"): ``convert`` clips values above 255, turning a normal
  16-bit chart into a white sheet. We scale instead, with this rule:

  ======================  ====================================================================
  mode                    8-bit value
  ======================  ====================================================================
  I;16, I;16B, I;16L,...  ``round(v / 257)``: the full 16-bit range maps onto 0..255 exactly
  I (32-bit int)          as-is if all values lie in 0..255; ``round(v / 257)`` if they lie in
                          0..65535 (16-bit PNGs opened as "I"); otherwise min/max stretched
  F (32-bit float)        ``round(v * 255)`` if all values lie in 0..1; as-is if in 0..255;
                          otherwise min/max stretched
  ======================  ====================================================================

  "Min/max stretched" maps the image minimum to 0 and maximum to 255 (a constant image -> 0).

Everything else (L, 1, CMYK, YCbCr, RGBX, ...) goes through PIL's ``convert("RGB")``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["to_rgb"]

_WHITE = (255, 255, 255, 255)
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa"}


def to_rgb(img: Image.Image) -> Image.Image:
    """Return an 8-bit RGB version of ``img`` (the same object when it already is plain RGB)."""
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_scale_to_uint8(img), mode="L").convert("RGB")
    if mode == "La":
        img = _unpremultiply_la(img)
        mode = "LA"
    if mode in _ALPHA_MODES or "transparency" in img.info:
        return _on_white(img.convert("RGBA"))
    return img.convert("RGB")


def _on_white(rgba: Image.Image) -> Image.Image:
    """Composite over an opaque white page: what a transparent chart looks like when printed."""
    page = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(page, rgba).convert("RGB")


def _unpremultiply_la(img: Image.Image) -> Image.Image:
    """PIL cannot convert premultiplied "La" anywhere, so undo the premultiplication by hand."""
    arr = np.asarray(img).astype(np.float64)
    lum, alpha = arr[..., 0], arr[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        straight = np.where(alpha > 0, lum * 255.0 / alpha, 0.0)
    out = np.stack([np.clip(np.rint(straight), 0, 255), alpha], axis=-1).astype(np.uint8)
    return Image.fromarray(out, mode="LA")


def _scale_to_uint8(img: Image.Image) -> np.ndarray:
    """Apply the documented high-bit-depth rule (module docstring)."""
    arr = np.asarray(img).astype(np.float64)
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = float(arr.min()), float(arr.max())
    mode = img.mode
    if mode.startswith("I;16") and lo >= 0:
        scaled = arr / 257.0
    elif mode == "F" and lo >= 0 and hi <= 1.0:
        scaled = arr * 255.0
    elif lo >= 0 and hi <= 255:
        scaled = arr
    elif mode.startswith("I") and lo >= 0 and hi <= 65535:
        scaled = arr / 257.0
    elif hi > lo:
        scaled = (arr - lo) * (255.0 / (hi - lo))
    else:
        scaled = np.zeros_like(arr)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
