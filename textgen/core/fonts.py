"""Fonts that work right after ``pip install``: a registry of bundled faces, user paths, and coverage checks.

Bundled (all SIL OFL 1.1, licence files beside them in ``textgen/font_files/``): Noto Sans / Sans Bold /
Serif for Latin (with accents), Greek and Cyrillic, plus decorative faces for synthetic data (League
Spartan, Bebas Neue, Lobster, Dancing Script, Kaushan Script, Comic Neue). CJK comes from the PyPI package
``noto-cjk-sans-otc`` (Noto Sans CJK; faces JP, KR, SC, TC, HK).

Missing glyphs are never drawn as silent tofu boxes: :func:`select_font` picks the first font of a fallback
chain that covers every character of a text, warns when it had to fall back from a font the user asked
for, and raises :class:`MissingGlyphError` naming the characters no available font can draw.
"""

from __future__ import annotations

import functools
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from textgen.core.script import is_hangul, is_kana

FONT_DIR = Path(__file__).parent.parent / "font_files"
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")

# name -> (file in FONT_DIR, face index, style words used in captions)
_BUNDLED: dict[str, tuple[str, int, str]] = {
    "noto-sans": ("NotoSans-Regular.ttf", 0, "plain sans-serif"),
    "noto-sans-bold": ("NotoSans-Bold.ttf", 0, "bold sans-serif"),
    "noto-serif": ("NotoSerif-Regular.ttf", 0, "serif"),
    "league-spartan": ("LeagueSpartan-Bold.otf", 0, "heavy geometric"),
    "bebas-neue": ("BebasNeue-Regular.otf", 0, "condensed all-caps"),
    "lobster": ("Lobster-Regular.otf", 0, "retro script"),
    "dancing-script": ("DancingScript-Bold.otf", 0, "handwritten script"),
    "kaushan-script": ("KaushanScript-Regular.otf", 0, "brush script"),
    "comic-neue": ("ComicNeue-Bold.otf", 0, "comic"),
}
# Face indices inside NotoSansCJK-Regular.ttc.
_CJK_FACES: dict[str, int] = {"jp": 0, "kr": 1, "sc": 2, "tc": 3, "hk": 4}

DEFAULT_FONT = "noto-sans"


class FontError(ValueError):
    """A font name or path cannot be resolved."""


class MissingGlyphError(ValueError):
    """No available font can draw some characters of a text."""


@dataclass(frozen=True)
class FontSpec:
    """A resolved font: file path and face index inside it (TTC collections hold several faces)."""

    name: str
    path: str
    index: int = 0


def _cjk_path() -> Path | None:
    try:
        import noto_cjk_sans_otc
    except ImportError:
        return None
    path = Path(str(noto_cjk_sans_otc.FONT_PATH))
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def available_fonts() -> dict[str, FontSpec]:
    """All fonts known by name: the bundled ones and, when installed, the Noto Sans CJK faces."""
    fonts = {name: FontSpec(name, str(FONT_DIR / file), index) for name, (file, index, _) in _BUNDLED.items()}
    cjk = _cjk_path()
    if cjk is not None:
        for tag, index in _CJK_FACES.items():
            fonts[f"noto-sans-cjk-{tag}"] = FontSpec(f"noto-sans-cjk-{tag}", str(cjk), index)
    return fonts


def font_style(name: str) -> str:
    """A few words describing a bundled font's style (for captions); the name itself for other fonts."""
    if name in _BUNDLED:
        return _BUNDLED[name][2]
    return "sans-serif" if name.startswith("noto-sans-cjk") else name


@functools.lru_cache(maxsize=256)
def resolve_font(font: str | None = None) -> FontSpec:
    """Turns a font name or path into a :class:`FontSpec`.

    Args:
        font: A name from :func:`available_fonts`, a path to a ``.ttf``/``.otf``/``.ttc``/``.otc`` file,
            optionally with ``#N`` to pick face N of a collection (``NotoSansCJK.ttc#2``), or ``None`` for
            :data:`DEFAULT_FONT`.

    Raises:
        FontError: the name is unknown, the file does not exist, or it is not a font file.
    """
    font = font or DEFAULT_FONT
    known = available_fonts()
    if font in known:
        return known[font]
    path_str, _, face = font.partition("#")
    path = Path(path_str).expanduser()
    if path.suffix.lower() in FONT_SUFFIXES:
        if not path.is_file():
            raise FontError(f"font file {str(path)!r} does not exist")
        try:
            index = int(face) if face else 0
            ImageFont.truetype(str(path), size=12, index=index)
        except (OSError, ValueError) as err:
            raise FontError(f"{str(path)!r} is not a readable font file (face {face or 0}): {err}") from err
        return FontSpec(name=str(path), path=str(path), index=index)
    raise FontError(
        f"unknown font {font!r}: expected one of {sorted(known)} or a path to a {'/'.join(FONT_SUFFIXES)} file"
    )


@functools.lru_cache(maxsize=64)
def coverage(spec: FontSpec) -> frozenset[int]:
    """The code points a font's cmap maps to a glyph."""
    from fontTools.ttLib import TTFont

    with TTFont(spec.path, fontNumber=spec.index, lazy=True) as tt:
        cmap = tt.getBestCmap() or {}
    return frozenset(cmap)


@functools.lru_cache(maxsize=4096)
def get_font(spec: FontSpec, size: int, shaped: bool = False) -> ImageFont.FreeTypeFont:
    """A cached Pillow font at ``size`` pixels.

    Args:
        spec: The font.
        size: Size in pixels.
        shaped: Lay text out with raqm (complex shaping and right-to-left: Arabic, Hebrew, Indic...); otherwise
            Pillow's basic layout, fast and deterministic, right for Latin and CJK
            (:func:`textgen.core.script.needs_shaping` tells which a text needs).

    Raises:
        FontError: ``shaped`` text but this Pillow was built without raqm.
    """
    engine = ImageFont.Layout.BASIC
    if shaped:
        from PIL import features

        if not features.check("raqm"):
            raise FontError(
                "this text needs complex shaping (Arabic, Hebrew, Indic scripts...) and this Pillow has no raqm "
                "(libraqm); install Pillow with raqm, e.g. the manylinux wheels from PyPI"
            )
        engine = ImageFont.Layout.RAQM
    return ImageFont.truetype(spec.path, size=max(1, int(size)), index=spec.index, layout_engine=engine)


def _needs_glyph(char: str) -> bool:
    # Whitespace and control/format characters draw nothing, so no font needs to cover them.
    return not char.isspace() and unicodedata.category(char)[0] != "C"


def missing_chars(text: str, spec: FontSpec) -> list[str]:
    """The distinct characters of ``text`` that ``spec`` cannot draw, in order of appearance."""
    cov = coverage(spec)
    seen: dict[str, None] = {}
    for ch in text:
        if _needs_glyph(ch) and ord(ch) not in cov:
            seen.setdefault(ch, None)
    return list(seen)


def _has_kana(text: str) -> bool:
    return any(is_kana(c) for c in text)


def _has_hangul(text: str) -> bool:
    return any(is_hangul(c) for c in text)


def _cjk_face_for(text: str, language: str | None) -> str:
    lang = (language or "").lower().replace("_", "-")
    if lang.startswith("ja") or (not lang and _has_kana(text)):
        return "noto-sans-cjk-jp"
    if lang.startswith("ko") or (not lang and _has_hangul(text)):
        return "noto-sans-cjk-kr"
    if lang in ("zh-tw", "zh-hant") or lang.startswith("zh-hant"):
        return "noto-sans-cjk-tc"
    if lang in ("zh-hk", "zh-mo"):
        return "noto-sans-cjk-hk"
    return "noto-sans-cjk-sc"


def fallback_chain(font: str | None, text: str, language: str | None = None) -> list[str]:
    """The fonts tried, in order, for ``text``: the requested one, the default Latin font, then the CJK face."""
    chain = [font or DEFAULT_FONT, DEFAULT_FONT, _cjk_face_for(text, language)]
    return list(dict.fromkeys(chain))


def select_font(
    text: str, font: str | None = None, language: str | None = None, on_missing: str = "error"
) -> tuple[FontSpec, str]:
    """Picks the first font of the fallback chain that draws every character of ``text``.

    Args:
        text: The text to draw.
        font: The font asked for (name or path); ``None`` for the default.
        language: Language tag; picks the CJK face (``ja`` -> JP, ``ko`` -> KR, ``zh-Hant`` -> TC, else SC).
        on_missing: ``"error"`` raises when no font covers the text; ``"warn"`` warns and removes the
            characters that no font can draw, then draws the rest.

    Returns:
        The chosen font and the text to draw (``text`` itself unless ``on_missing="warn"`` removed characters).

    Raises:
        FontError: ``font`` cannot be resolved.
        MissingGlyphError: naming the characters (and code points) no available font can draw.
    """
    if on_missing not in ("error", "warn"):
        raise ValueError(f"on_missing must be 'error' or 'warn', got {on_missing!r}")
    requested = resolve_font(font)
    known = available_fonts()
    chain = [requested] + [known[name] for name in fallback_chain(font, text, language)[1:] if name in known]
    for i, spec in enumerate(chain):
        if not missing_chars(text, spec):
            if i > 0 and font is not None:  # falling back from the default font is the design, not news
                lacking = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing_chars(text, requested))
                warnings.warn(f"font {requested.name!r} cannot draw {lacking}; using {spec.name!r}", stacklevel=2)
            return spec, text
    # No single font covers everything: name what nobody can draw.
    undrawable = [c for c in missing_chars(text, requested) if all(c in missing_chars(c, s) for s in chain[1:])]
    if not undrawable:  # each character is drawable by some font, just not all by one
        undrawable = missing_chars(text, chain[-1])
    names = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in undrawable)
    if on_missing == "error":
        raise MissingGlyphError(
            f"no available font can draw {names} in {text!r} (tried {[s.name for s in chain]}); "
            "pass a font that covers it, or on_missing='warn' to drop such characters"
        )
    kept = "".join(c for c in text if c not in undrawable)
    warnings.warn(f"dropping {names} from {text!r}: no available font can draw them", stacklevel=2)
    if not kept.strip():
        raise MissingGlyphError(f"nothing drawable is left of {text!r} after dropping {names}")
    return select_font(kept, font=font, language=language, on_missing="error")
