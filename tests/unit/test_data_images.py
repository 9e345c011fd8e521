"""to_rgb: every PIL mode chart data can arrive in becomes correct 8-bit RGB."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.data.images import to_rgb

WHITE = (255, 255, 255)


def _pixels(img: Image.Image) -> list[tuple[int, int, int]]:
    assert img.mode == "RGB"
    return [img.getpixel((x, 0)) for x in range(img.width)]


def test_rgb_is_returned_unchanged():
    img = Image.new("RGB", (3, 2), (10, 20, 30))
    assert to_rgb(img) is img


def test_rgba_composited_on_white():
    img = Image.new("RGBA", (3, 1))
    img.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent red -> page white, not red or black
    img.putpixel((1, 0), (0, 0, 255, 255))  # opaque blue stays blue
    img.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent black -> mid grey
    out = _pixels(to_rgb(img))
    assert out[0] == WHITE
    assert out[1] == (0, 0, 255)
    assert all(126 <= c <= 128 for c in out[2])


def test_transparent_black_rgba_is_white_not_black():
    # PIL's own convert("RGB") would give black here: the reason to_rgb exists.
    img = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert img.convert("RGB").getpixel((0, 0)) == (0, 0, 0)
    assert to_rgb(img).getpixel((0, 0)) == WHITE


def test_la_and_premultiplied_modes_on_white():
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (40, 255))
    assert _pixels(to_rgb(la)) == [WHITE, (40, 40, 40)]
    rgba_pre = Image.new("RGBa", (1, 1), (0, 0, 0, 0))
    assert _pixels(to_rgb(rgba_pre)) == [WHITE]
    la_pre = Image.fromarray(np.array([[[50, 255], [25, 128], [0, 0]]], dtype=np.uint8), mode="La")
    out = _pixels(to_rgb(la_pre))
    assert out[0] == (50, 50, 50)
    assert all(abs(c - 152) <= 2 for c in out[1])  # un-premultiplied 50 at alpha 128, over white
    assert out[2] == WHITE


def test_palette_with_transparency_index_on_white():
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 200, 10, 10] + [0] * (256 * 3 - 6))
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.info["transparency"] = 0  # index 0 (black) is transparent
    assert _pixels(to_rgb(img)) == [WHITE, (200, 10, 10)]


def test_palette_with_alpha_pa():
    img = Image.new("PA", (2, 1))
    img.putpalette([0, 128, 0] + [0] * (256 * 3 - 3))
    img.putpixel((0, 0), (0, 0))
    img.putpixel((1, 0), (0, 255))
    assert _pixels(to_rgb(img)) == [WHITE, (0, 128, 0)]


def test_plain_palette_without_transparency():
    img = Image.new("P", (1, 1))
    img.putpalette([9, 8, 7] + [0] * (256 * 3 - 3))
    assert _pixels(to_rgb(img)) == [(9, 8, 7)]


def test_grey_and_bilevel():
    assert _pixels(to_rgb(Image.new("L", (1, 1), 77))) == [(77, 77, 77)]
    bilevel = Image.new("1", (2, 1), 0)
    bilevel.putpixel((1, 0), 1)
    assert _pixels(to_rgb(bilevel)) == [(0, 0, 0), WHITE]


def test_grey_with_transparency_key_on_white():
    img = Image.new("L", (2, 1), 0)
    img.putpixel((1, 0), 100)
    img.info["transparency"] = 0
    assert _pixels(to_rgb(img)) == [WHITE, (100, 100, 100)]


def test_cmyk_and_ycbcr():
    cmyk = Image.new("CMYK", (3, 1))
    cmyk.putpixel((0, 0), (0, 0, 0, 0))  # no ink -> white
    cmyk.putpixel((1, 0), (255, 0, 0, 0))  # cyan
    cmyk.putpixel((2, 0), (0, 0, 0, 255))  # black ink
    assert _pixels(to_rgb(cmyk)) == [WHITE, (0, 255, 255), (0, 0, 0)]
    ycbcr = Image.new("YCbCr", (1, 1), (76, 85, 255))  # pure red in JPEG YCbCr
    r, g, b = to_rgb(ycbcr).getpixel((0, 0))
    assert r > 240 and g < 10 and b < 10


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_16_bit_scaled_not_saturated(mode):
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    dtype = ">u2" if mode == "I;16B" else "<u2"
    img = Image.frombytes(mode, (4, 1), values.astype(dtype).tobytes())
    assert img.mode == mode
    assert img.convert("RGB").getpixel((1, 0)) == WHITE  # PIL clips 1000 to white
    out = [p[0] for p in _pixels(to_rgb(img))]
    assert out == [0, 4, 128, 255]  # round(v / 257)
    assert all(p[0] == p[1] == p[2] for p in _pixels(to_rgb(img)))


def test_16_bit_png_roundtrip(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 20000, 65535]], dtype=np.uint16)).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")
        assert [p[0] for p in _pixels(to_rgb(img))] == [0, 78, 255]


def test_32_bit_int_rules():
    small = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32), mode="I")
    assert [p[0] for p in _pixels(to_rgb(small))] == [0, 100, 255]  # already 8-bit: kept
    wide = Image.fromarray(np.array([[0, 2570, 65535]], dtype=np.int32), mode="I")
    assert [p[0] for p in _pixels(to_rgb(wide))] == [0, 10, 255]  # 16-bit data in "I": / 257
    signed = Image.fromarray(np.array([[-100, 0, 300]], dtype=np.int32), mode="I")
    assert [p[0] for p in _pixels(to_rgb(signed))] == [0, 64, 255]  # min/max stretch


def test_float_rules():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    assert [p[0] for p in _pixels(to_rgb(unit))] == [0, 128, 255]
    byte_range = Image.fromarray(np.array([[0.0, 64.0, 200.0]], dtype=np.float32), mode="F")
    assert [p[0] for p in _pixels(to_rgb(byte_range))] == [0, 64, 200]
    wide = Image.fromarray(np.array([[-1.0, 1000.0, 3000.0]], dtype=np.float32), mode="F")
    assert [p[0] for p in _pixels(to_rgb(wide))] == [0, 85, 255]  # (1000 + 1) / 3001 * 255
    constant = Image.fromarray(np.full((1, 2), -5.0, dtype=np.float32), mode="F")
    assert _pixels(to_rgb(constant)) == [(0, 0, 0), (0, 0, 0)]


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "I;16", "F"]
)
def test_every_mode_gives_rgb_same_size(mode):
    out = to_rgb(Image.new(mode, (5, 3)))
    assert out.mode == "RGB"
    assert out.size == (5, 3)
