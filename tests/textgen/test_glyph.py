import hashlib
import math
import warnings

import numpy as np
import pytest

from textgen.core.fonts import FONT_DIR, MissingGlyphError, available_fonts, resolve_font, select_font
from textgen.core.glyph import GlyphOptions, fit_text, render_glyph
from textgen.core.layout import Layout, LayoutError, TextBox

TEXTS = ["OPEN", "Summer Sale", "$19.99", "50% OFF", "Château", "夏季促销", "セール", "Don't stop the music tonight"]
BOXES = [(0.05, 0.05, 0.95, 0.25), (0.1, 0.3, 0.45, 0.9), (0.55, 0.3, 0.95, 0.5), (0.6, 0.6, 0.7, 0.95)]


def _ink(image) -> np.ndarray:
    """Boolean ink mask of a black-on-white glyph image."""
    return np.asarray(image.convert("L")) < 250


def test_black_on_white_rgb_at_canvas_size():
    image = render_glyph(Layout(300, 200, (TextBox("OPEN", (0.1, 0.1, 0.9, 0.9)),)))
    assert image.mode == "RGB" and image.size == (300, 200)
    pixels = np.asarray(image)
    assert pixels.min() == 0 and pixels.max() == 255
    assert (pixels[0, 0] == 255).all()  # background white


def test_mask_is_white_on_black_and_matches_glyph():
    layout = Layout(256, 256, (TextBox("SALE", (0.1, 0.2, 0.9, 0.6)),))
    glyph = np.asarray(render_glyph(layout).convert("L")).astype(int)
    mask = render_glyph(layout, mask=True)
    assert mask.mode == "L"
    assert np.array_equal(255 - glyph, np.asarray(mask).astype(int))


def test_same_layout_same_bytes():
    layout = Layout(512, 512, tuple(TextBox(t, b) for t, b in zip(TEXTS, BOXES)))
    digests = {hashlib.sha256(render_glyph(layout).tobytes()).hexdigest() for _ in range(3)}
    assert len(digests) == 1


@pytest.mark.parametrize("angle", [0, 7, -30, 90])
@pytest.mark.parametrize("text", TEXTS)
def test_ink_never_leaves_its_box(text, angle):
    for box in BOXES:
        layout = Layout(400, 300, (TextBox(text, box, angle=angle),))
        ink = _ink(render_glyph(layout))
        x0, y0, x1, y1 = layout.pixel_boxes()[0]
        assert ink.any(), f"nothing drawn for {text!r} in {box}"
        outside = ink.copy()
        outside[y0:y1, x0:x1] = False
        assert not outside.any(), f"ink outside {box} for {text!r} at {angle} deg"


def test_text_fills_the_box():
    layout = Layout(512, 512, (TextBox("SUMMER", (0.1, 0.1, 0.9, 0.4)),))
    ink = _ink(render_glyph(layout))
    ys, xs = np.nonzero(ink)
    x0, y0, x1, y1 = layout.pixel_boxes()[0]
    # Largest size that fits: the text touches two opposite sides (within the 1 px margin and rounding).
    fill_w = (xs.max() - xs.min() + 1) / (x1 - x0)
    fill_h = (ys.max() - ys.min() + 1) / (y1 - y0)
    assert max(fill_w, fill_h) > 0.95
    # and is centred
    assert abs((xs.min() + xs.max()) / 2 - (x0 + x1) / 2) <= 2
    assert abs((ys.min() + ys.max()) / 2 - (y0 + y1) / 2) <= 2


def test_size_is_the_largest_that_fits():
    box = TextBox("Fresh Coffee", (0.1, 0.1, 0.9, 0.3))
    opts = GlyphOptions()
    fitted = fit_text(box, 512, 512, options=opts)
    from textgen.core.glyph import _place, _rotated_extent

    avail = (0.8 * 512 - 2 * opts.margin, 0.2 * 512 - 2 * opts.margin)
    placed = _place(fitted.lines, fitted.font, fitted.size + 1, opts.line_spacing)
    w, h = _rotated_extent(placed.width, placed.height, 0)
    assert w > avail[0] or h > avail[1]


def test_tall_box_wraps_wide_box_does_not():
    text = "Live music every Friday night"
    tall = fit_text(TextBox(text, (0.3, 0.1, 0.7, 0.9)), 512, 512)
    wide = fit_text(TextBox(text, (0.05, 0.4, 0.95, 0.5)), 512, 512)
    assert len(tall.lines) >= 3
    assert wide.lines == (text,)
    assert " ".join(tall.lines) == text  # wrapping never loses or reorders words


def test_cjk_wraps_per_character():
    fitted = fit_text(TextBox("欢迎光临本店", (0.4, 0.05, 0.6, 0.95)), 512, 512)
    assert len(fitted.lines) > 1
    assert "".join(fitted.lines) == "欢迎光临本店"


def test_explicit_newlines_are_kept():
    fitted = fit_text(TextBox("BIG\nsale", (0.1, 0.1, 0.9, 0.9)), 512, 512)
    assert fitted.lines == ("BIG", "sale")


def test_no_wrap_option():
    fitted = fit_text(TextBox("a b c d e", (0.4, 0.1, 0.6, 0.9)), 512, 512, options=GlyphOptions(wrap=False))
    assert fitted.lines == ("a b c d e",)


def test_rotation_turns_the_text():
    flat = _ink(render_glyph(Layout(256, 256, (TextBox("ROTATE", (0.05, 0.05, 0.95, 0.95)),))))
    turned = _ink(render_glyph(Layout(256, 256, (TextBox("ROTATE", (0.05, 0.05, 0.95, 0.95), angle=90),))))

    def spread(ink):
        ys, xs = np.nonzero(ink)
        return xs.max() - xs.min(), ys.max() - ys.min()

    fw, fh = spread(flat)
    tw, th = spread(turned)
    assert fw > 2 * fh and th > 2 * tw  # wide text becomes tall text


def test_rotated_text_principal_axis_follows_angle():
    ink = _ink(render_glyph(Layout(256, 256, (TextBox("LONG WORD", (0.0, 0.0, 1.0, 1.0), angle=30),))))
    ys, xs = np.nonzero(ink)
    cov = np.cov(np.stack([xs, -ys]).astype(float))  # y up, so counter-clockwise is positive
    evals, evecs = np.linalg.eigh(cov)
    vx, vy = evecs[:, np.argmax(evals)]
    angle = math.degrees(math.atan2(vy, vx)) % 180
    assert abs(angle - 30) < 5


def test_size_override_scales_the_canvas():
    layout = Layout(512, 512, (TextBox("OPEN", (0.25, 0.25, 0.75, 0.75)),))
    small = render_glyph(layout, size=(128, 64))
    assert small.size == (128, 64)
    ys, xs = np.nonzero(_ink(small))
    assert xs.min() >= 32 and xs.max() < 96 and ys.min() >= 16 and ys.max() < 48


def test_every_bundled_font_renders_latin():
    for name, spec in available_fonts().items():
        layout = Layout(256, 128, (TextBox("Hello", (0.05, 0.1, 0.95, 0.9), font=name),))
        assert _ink(render_glyph(layout)).sum() > 200, name
        assert spec.path


def test_user_font_path_and_collection_face(tmp_path):
    path = FONT_DIR / "NotoSerif-Regular.ttf"
    layout = Layout(256, 128, (TextBox("Serif", (0.05, 0.1, 0.95, 0.9), font=str(path)),))
    serif = render_glyph(layout)
    sans = render_glyph(Layout(256, 128, (TextBox("Serif", (0.05, 0.1, 0.95, 0.9)),)))
    assert serif.tobytes() != sans.tobytes()
    cjk = available_fonts()["noto-sans-cjk-sc"]
    assert resolve_font(f"{cjk.path}#2").index == 2


def test_missing_glyph_raises_naming_the_character():
    layout = Layout(256, 128, (TextBox("Hi \U0001f600", (0.05, 0.1, 0.95, 0.9)),))
    with pytest.raises(MissingGlyphError, match=r"U\+1F600"):
        render_glyph(layout)


def test_missing_glyph_warn_drops_it_and_draws_the_rest():
    layout = Layout(256, 128, (TextBox("Hi \U0001f600", (0.05, 0.1, 0.95, 0.9)),))
    with pytest.warns(UserWarning, match=r"dropping .*U\+1F600"):
        image = render_glyph(layout, options=GlyphOptions(on_missing="warn"))
    plain = render_glyph(Layout(256, 128, (TextBox("Hi", (0.05, 0.1, 0.95, 0.9)),)))
    assert image.tobytes() == plain.tobytes()


def test_user_font_without_a_glyph_falls_back_with_a_warning():
    with pytest.warns(UserWarning, match=r"'bebas-neue' cannot draw '夏'.*using 'noto-sans-cjk-sc'"):
        spec, _ = select_font("SALE 夏", font="bebas-neue")
    assert spec.name == "noto-sans-cjk-sc"


def test_default_font_falls_back_to_cjk_silently_and_picks_the_face():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_font("夏季促销")[0].name == "noto-sans-cjk-sc"
        assert select_font("セール")[0].name == "noto-sans-cjk-jp"
        assert select_font("漢字", language="zh-Hant")[0].name == "noto-sans-cjk-tc"
        assert select_font("Château")[0].name == "noto-sans"


def test_invalid_layout_is_rejected_before_drawing():
    with pytest.raises(LayoutError, match="x1 <= x0"):
        render_glyph(Layout(64, 64, (TextBox("A", (0.5, 0.1, 0.2, 0.3)),)))


def test_tiny_box_draws_at_minimum_size_clipped_to_the_box():
    layout = Layout(512, 512, (TextBox("A very long sentence in a tiny box", (0.5, 0.5, 0.51, 0.51)),))
    ink = _ink(render_glyph(layout))
    x0, y0, x1, y1 = layout.pixel_boxes()[0]
    outside = ink.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any()
