"""Legibility metrics of the text-rendering papers, as pure functions over strings (and pixels for colour).

Nothing here runs OCR: :mod:`textgen.evaluate` reads the images and hands the strings to these functions, so
every definition can be checked against hand-computed cases. Four families:

* **AnyText** (Tuo et al., 2023; ``eval/eval_dgocr.py``): per text *line* (one layout box), the OCR reading of
  the box crop against the intended text. *Sentence Accuracy* is the exact-match rate; *NED* is
  ``1 - edit_distance / max(len)`` (a similarity: 1 = identical), averaged over lines. :func:`line_scores`.
* **GlyphControl** (Yang et al., 2023; ``ocr_acc.py``): whole-image OCR. *Acc*: the intended text equals one of
  the OCR readings; *case-insensitive Acc* the same after lower-casing; *LD*: the smallest Levenshtein distance
  between the intended text and a reading. :func:`glyphcontrol_scores`.
* **TextDiffuser** (Chen et al., 2023; ``eval/ocr_eval.py``): whole-image OCR as a bag of lower-cased words.
  *Precision* / *recall* of the multiset of read words against the intended words, *F-measure* from them, and
  *accuracy*: the two multisets are equal. :func:`textdiffuser_scores`.
* **Colour match** (for the synthetic set, whose captions name colours): the median colour of a glyph's ink
  pixels and of the background, each assigned to its nearest named colour in CIELAB. :func:`estimate_colors`,
  :func:`color_match`.

One normalisation is applied everywhere and stated once here: runs of whitespace (including line breaks) become
one space and ends are stripped (:func:`normalize_spaces`), since OCR cannot report a line break inside a box.
Case, punctuation and accents always count unless a metric's docstring says otherwise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from textgen.core.script import is_cjk

RGB = tuple[int, int, int]

# ------------------------------------------------------------------------------------------------ strings


def normalize_spaces(text: str) -> str:
    """Collapses every run of whitespace (spaces, tabs, line breaks) into one space and strips the ends."""
    return " ".join(str(text).split())


def join_detections(texts: Sequence[str]) -> str:
    """Joins OCR readings (in reading order) into one string.

    Readings are separated by one space, except between two CJK characters: Chinese and Japanese are written
    without spaces, so a detector that splits ``"你好世界"`` into two boxes must not create a space.

    Args:
        texts: The readings, in reading order.

    Returns:
        The joined, whitespace-normalised text; ``""`` for no readings.
    """
    out = ""
    for raw in texts:
        text = normalize_spaces(raw)
        if not text:
            continue
        if out and not (is_cjk(out[-1]) and is_cjk(text[0])):
            out += " "
        out += text
    return out


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance: the fewest single-element insertions, deletions and substitutions from ``a`` to ``b``.

    Works on strings (characters) and on any sequences of hashable items (e.g. word lists). Unit costs, the
    definition both AnyText (``Levenshtein.distance``) and GlyphControl use.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def ned(pred: str, target: str) -> float:
    """AnyText's NED of one line: ``1 - edit_distance(pred, target) / max(len(pred), len(target))``.

    A similarity in ``[0, 1]``: 1 means identical, 0 means nothing in common (e.g. an empty reading of a
    non-empty target). Two empty strings score 1. Case and punctuation count; whitespace is normalised
    (:func:`normalize_spaces`). AnyText adds ``1e-5`` to the denominator instead of special-casing empty
    strings, and maps characters outside its recogniser's dictionary to one "unknown" id; neither changes a
    score by more than ``1e-4`` for readable text.

    Args:
        pred: What OCR read.
        target: The intended text.
    """
    pred, target = normalize_spaces(pred), normalize_spaces(target)
    longest = max(len(pred), len(target))
    if longest == 0:
        return 1.0
    return 1.0 - edit_distance(pred, target) / longest


# ------------------------------------------------------------------------------------------------ AnyText


@dataclass(frozen=True)
class LineScore:
    """AnyText's scores of one text line (one layout box).

    Attributes:
        target: The intended text (whitespace-normalised).
        read: The OCR reading of the box crop (whitespace-normalised; ``""`` when nothing was read).
        exact: ``read == target`` (case-sensitive): the line counts towards Sentence Accuracy.
        ned: :func:`ned` of the line.
    """

    target: str
    read: str
    exact: bool
    ned: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def line_scores(reads: Sequence[str], targets: Sequence[str]) -> list[LineScore]:
    """AnyText's per-line comparison: the reading of each box crop against that box's intended text.

    *Sentence Accuracy* of a set of lines is the mean of ``exact`` and *NED* the mean of ``ned`` over all lines
    of all images (AnyText averages over lines, not images). ``exact`` is case-sensitive with no normalisation
    other than whitespace: ``"Open"`` read for ``"OPEN"`` is wrong, ``"OPEN!"`` for ``"OPEN"`` is wrong, an extra
    or missing repeated word (``"GO GO"`` for ``"GO"``) is wrong.

    Args:
        reads: OCR reading of each box, in layout order.
        targets: Intended text of each box, in the same order.

    Returns:
        One :class:`LineScore` per box.

    Raises:
        ValueError: ``reads`` and ``targets`` differ in length.
    """
    if len(reads) != len(targets):
        raise ValueError(f"line_scores: {len(reads)} readings for {len(targets)} intended lines")
    out = []
    for read, target in zip(reads, targets):
        read, target = normalize_spaces(read), normalize_spaces(target)
        out.append(LineScore(target=target, read=read, exact=read == target, ned=ned(read, target)))
    return out


# ------------------------------------------------------------------------------------------- GlyphControl


@dataclass(frozen=True)
class TargetScore:
    """GlyphControl's scores of one intended text against a whole-image OCR.

    Attributes:
        target: The intended text (whitespace-normalised).
        acc: The text equals an OCR reading exactly (see :func:`glyphcontrol_scores` for what a reading is).
        acc_case_insensitive: The same after lower-casing both sides.
        ld: Smallest Levenshtein distance between the text and a reading; ``len(target)`` when nothing was read.
        closest: The reading at that distance (``""`` when nothing was read).
        detected: OCR read anything at all in the image.
    """

    target: str
    acc: bool
    acc_case_insensitive: bool
    ld: int
    closest: str
    detected: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reading_candidates(detections: Sequence[str]) -> list[str]:
    """Every run of consecutive detections joined in reading order (:func:`join_detections`), singles included.

    GlyphControl matches its single-word targets against single detections. A multi-word target (``"STOP NOW"``)
    may come back as one detection or as two, so runs of consecutive detections are candidates too: a target
    is found when some run reads exactly as it. ``n`` detections give ``n (n + 1) / 2`` candidates.
    """
    texts = [normalize_spaces(t) for t in detections if normalize_spaces(t)]
    return [join_detections(texts[i:j]) for i in range(len(texts)) for j in range(i + 1, len(texts) + 1)]


def glyphcontrol_scores(detections: Sequence[str], targets: Sequence[str]) -> list[TargetScore]:
    """GlyphControl's Acc, case-insensitive Acc and LD of each intended text over one image's OCR.

    GlyphControl (``ocr_acc.py``) counts a sample as correct when the intended text is *one of* the strings
    EasyOCR read (membership, not substring: ``"OPEN"`` is not found in a reading ``"OPEN NOW"``), and its LD is
    the minimum ``Levenshtein.distance`` between the text and any reading. Here a reading is any run of
    consecutive detections (:func:`reading_candidates`), so multi-word texts split by the detector still match.

    Conventions worth knowing when comparing numbers:

    * Membership means extra words elsewhere in the image do not hurt Acc, and a repeated target
      (``["GO", "GO"]``) is found twice by one reading ``"GO"``. TextDiffuser's word metrics catch both.
    * Nothing read: Acc is false and LD is ``len(target)`` (the distance to the empty string). GlyphControl's
      script skips such images when averaging LD, which flatters weak models; the report gives both averages
      (``ld`` and ``ld_detected``, the latter over images where OCR read something).

    Args:
        detections: The whole-image OCR readings, in reading order.
        targets: The intended texts of the image.

    Returns:
        One :class:`TargetScore` per target.
    """
    candidates = reading_candidates(detections)
    lowered = {c.lower() for c in candidates}
    exact = set(candidates)
    out = []
    for raw in targets:
        target = normalize_spaces(raw)
        if candidates:
            closest = min(candidates, key=lambda c: (edit_distance(c, target), len(c)))
            ld = edit_distance(closest, target)
        else:
            closest, ld = "", len(target)
        out.append(
            TargetScore(
                target=target,
                acc=target in exact,
                acc_case_insensitive=target.lower() in lowered,
                ld=ld,
                closest=closest,
                detected=bool(candidates),
            )
        )
    return out


# ------------------------------------------------------------------------------------------- TextDiffuser


def words_of(texts: Sequence[str]) -> list[str]:
    """TextDiffuser's words: every text lower-cased and split on whitespace (punctuation stays attached)."""
    return [w for text in texts for w in str(text).lower().split()]


def f_measure(precision: float, recall: float) -> float:
    """Harmonic mean ``2 P R / (P + R)``; 0 when both are 0."""
    return 0.0 if precision + recall <= 0 else 2.0 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class WordScore:
    """TextDiffuser's word-level OCR scores of one image.

    Attributes:
        precision: Matched words / words read (0 when nothing was read).
        recall: Matched words / intended words (0 when nothing was intended).
        f_measure: :func:`f_measure` of this image's precision and recall (for display; the report's F-measure
            is computed from the mean precision and recall, as TextDiffuser does).
        accuracy: The read and intended word multisets are equal (every word read, nothing extra).
        matched: Words matched one to one (multiset intersection size).
        read: The words read.
        intended: The intended words.
    """

    precision: float
    recall: float
    f_measure: float
    accuracy: bool
    matched: int
    read: tuple[str, ...]
    intended: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["read"], data["intended"] = list(self.read), list(self.intended)
        return data


def textdiffuser_scores(detections: Sequence[str], targets: Sequence[str]) -> WordScore:
    """TextDiffuser's OCR precision, recall, F-measure and accuracy of one image.

    Both sides become bags of lower-cased, whitespace-split words (:func:`words_of`; TextDiffuser lower-cases
    its ground truth and its MaskTextSpotter-v3 output, which is one word per line). A read word matches an
    intended word at most once, so repeated words must be read as often as they are intended. Punctuation is
    kept: ``"sale!"`` does not match ``"sale"``. Accuracy is multiset equality; TextDiffuser's script compares the
    concatenation of the sorted word lists, which agrees except for pathological splits (``["ab", "c"]`` vs
    ``["a", "bc"]``).

    Args:
        detections: The whole-image OCR readings.
        targets: The intended texts.

    Returns:
        The image's :class:`WordScore`.
    """
    read, intended = words_of(detections), words_of(targets)
    matched = sum((Counter(read) & Counter(intended)).values())
    precision = matched / len(read) if read else 0.0
    recall = matched / len(intended) if intended else 0.0
    return WordScore(
        precision=precision,
        recall=recall,
        f_measure=f_measure(precision, recall),
        accuracy=Counter(read) == Counter(intended),
        matched=matched,
        read=tuple(read),
        intended=tuple(intended),
    )


# ---------------------------------------------------------------------------------------------------- colour

# The eleven basic colour terms (Berlin & Kay) at their CSS values: the palette when none is given. Evaluate
# the synthetic set with :data:`textgen.core.colors.PALETTE`, the colours it is painted with.
BASIC_PALETTE: dict[str, RGB] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "red": (255, 0, 0),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "pink": (255, 192, 203),
    "brown": (165, 42, 42),
}
_ALIASES = {"grey": "gray", "dark grey": "dark gray", "light grey": "light gray"}


def parse_color(spec: str | Sequence[int]) -> RGB:
    """An RGB triple from ``"#rrggbb"``, ``"#rgb"``, a CSS colour name, ``"rgb(r, g, b)"`` or a 3-sequence.

    Raises:
        ValueError: naming the spec and what was expected.
    """
    if isinstance(spec, str):
        from PIL import ImageColor

        try:
            rgb = ImageColor.getrgb(spec.strip())
        except ValueError as err:
            raise ValueError(
                f"colour {spec!r} is not a colour (expected #rrggbb, a CSS name or rgb(r, g, b))"
            ) from err
        return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    values = list(spec)
    if len(values) != 3 or not all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
        raise ValueError(f"colour {spec!r} is not an (r, g, b) triple")
    return tuple(int(round(min(255.0, max(0.0, float(v))))) for v in values)  # type: ignore[return-value]


def srgb_to_lab(rgb: np.ndarray | Sequence[float]) -> np.ndarray:
    """CIELAB (D65) of sRGB colours in 0-255: an ``(..., 3)`` array in, the same shape out."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e(a: Sequence[float], b: Sequence[float]) -> float:
    """CIE76 colour difference (Euclidean distance in CIELAB) of two sRGB colours; ~2.3 is just noticeable."""
    return float(np.linalg.norm(srgb_to_lab(a) - srgb_to_lab(b)))


def _palette_rgb(palette: Mapping[str, str | Sequence[int]]) -> dict[str, RGB]:
    if not palette:
        raise ValueError("palette: expected at least one named colour")
    return {str(name): parse_color(value) for name, value in palette.items()}


def nearest_color(rgb: Sequence[float], palette: Mapping[str, str | Sequence[int]]) -> tuple[str, float]:
    """The palette name nearest to ``rgb`` in CIELAB, and its :func:`delta_e`. Ties go to the first entry."""
    table = _palette_rgb(palette)
    names = list(table)
    distances = np.linalg.norm(srgb_to_lab(np.array([table[n] for n in names])) - srgb_to_lab(rgb), axis=-1)
    best = int(np.argmin(distances))
    return names[best], float(distances[best])


def resolve_color_name(spec: str | Sequence[int], palette: Mapping[str, str | Sequence[int]]) -> tuple[str, RGB]:
    """Names an intended colour in terms of a palette.

    A palette name (case-insensitive, ``grey`` = ``gray``) is itself; any other colour (``"#d22626"``, ``"navy"``,
    ``(210, 38, 38)``) takes the name of a palette entry within ``delta_e < 1`` of it (the synthetic layouts
    store the palette's exact hex), else keeps its own spelling as a name of its own.

    Returns:
        ``(name, rgb)``.
    """
    table = _palette_rgb(palette)
    if isinstance(spec, str):
        key = _ALIASES.get(spec.strip().lower(), spec.strip().lower())
        for name, rgb in table.items():
            if name.lower() == key:
                return name, rgb
    rgb = parse_color(spec)
    name, distance = nearest_color(rgb, table)
    if distance < 1.0:
        return name, table[name]
    return (spec if isinstance(spec, str) else "#{:02x}{:02x}{:02x}".format(*rgb)), rgb


@dataclass(frozen=True)
class ColorMatch:
    """Whether an estimated colour is nearest to the intended one.

    Attributes:
        intended: The intended colour name(s) (palette names where they resolve to one).
        estimated: The colour measured in the image (sRGB).
        nearest: The palette name nearest to ``estimated`` (the intended colours join the palette when they
            are not in it).
        match: ``nearest`` is one of ``intended``.
        delta_e: CIE76 distance from ``estimated`` to the closest intended colour.
    """

    intended: tuple[str, ...]
    estimated: RGB
    nearest: str
    match: bool
    delta_e: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "intended": list(self.intended),
            "estimated": "#{:02x}{:02x}{:02x}".format(*self.estimated),
            "nearest": self.nearest,
            "match": self.match,
            "delta_e": round(self.delta_e, 2),
        }


def color_match(
    estimated: Sequence[float],
    intended: str | Sequence[int] | Sequence[str | Sequence[int]],
    palette: Mapping[str, str | Sequence[int]] | None = None,
) -> ColorMatch:
    """Says whether a measured colour reads as the intended named colour.

    The measured colour is assigned to its nearest palette entry in CIELAB (:func:`nearest_color`); it matches
    when that entry is the intended one. Several intended colours (a two-colour striped background) match when
    the nearest entry is any of them.

    Args:
        estimated: The measured sRGB colour (e.g. from :func:`estimate_colors`).
        intended: A colour (name, hex, RGB triple) or a list of them.
        palette: Name -> colour; default :data:`BASIC_PALETTE`. Intended colours not in it are added to it.

    Returns:
        The :class:`ColorMatch`.
    """
    table = _palette_rgb(palette or BASIC_PALETTE)
    if isinstance(intended, str) or (
        isinstance(intended, Sequence) and len(intended) == 3 and all(isinstance(v, (int, float)) for v in intended)
    ):
        intended = [intended]  # type: ignore[list-item]
    resolved = [resolve_color_name(spec, table) for spec in intended]  # type: ignore[union-attr]
    if not resolved:
        raise ValueError("color_match: no intended colour given")
    for name, rgb in resolved:
        table.setdefault(name, rgb)
    est = parse_color(estimated)
    nearest, _ = nearest_color(est, table)
    names = tuple(name for name, _ in resolved)
    return ColorMatch(
        intended=names,
        estimated=est,
        nearest=nearest,
        match=nearest in names,
        delta_e=min(delta_e(est, rgb) for _, rgb in resolved),
    )


def _median_rgb(pixels: np.ndarray) -> RGB:
    return tuple(int(v) for v in np.median(pixels, axis=0).round())  # type: ignore[return-value]


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grows a boolean mask by ``radius`` pixels (square neighbourhood)."""
    out = mask.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _text_color(region: np.ndarray, ink: np.ndarray, fallback_background: RGB | None, min_pixels: int) -> RGB | None:
    height = region.shape[0]
    near = _dilate(ink, max(1, round(0.05 * height)))
    if near.sum() < min_pixels:
        return None
    far = ~near
    reference = _median_rgb(region[far]) if far.sum() >= min_pixels else fallback_background
    if reference is None:
        return _median_rgb(region[ink] if ink.sum() >= min_pixels else region[near])
    candidates = region[near]
    distance = np.linalg.norm(srgb_to_lab(candidates) - srgb_to_lab(reference), axis=-1)
    threshold = 0.5 * float(np.percentile(distance, 95))
    if threshold < 2.5:  # nothing near the glyph differs visibly from the background: no text was painted
        return _median_rgb(candidates)
    return _median_rgb(candidates[distance >= threshold])


def estimate_colors(
    image: np.ndarray,
    ink_mask: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    min_pixels: int = 8,
    background_margin: int = 2,
) -> tuple[list[RGB | None], RGB | None]:
    """Measures the text colour of each box and the background colour of an image.

    Background colour: the per-channel median of every pixel outside all boxes (each grown by
    ``background_margin``). The median, not the mean, so stray ink or texture does not shift it.

    Text colour of a box: painted text rarely sits exactly on the glyph it was conditioned on (a few pixels off
    already misses a thin serif stroke), so the glyph is used as a guide, not a stencil. Inside the box, pixels
    within ``5%`` of the box height of the glyph's ink are the candidates, and the median of the box's pixels
    farther away is the local background (the image background when the glyph fills the box; the median, because
    misplaced text may fall there too). The text colour is the median of the candidates whose CIELAB distance to
    the local background is at least half the 95th-percentile distance: solid stroke pixels, not anti-aliased edges
    or background between strokes. When no candidate differs visibly (no text was painted), it is the candidates'
    median, i.e. the background colour, which then fails to match the intended text colour, as it should. On
    ``data_prep.synth``'s own images (exact ground truth) this agrees with the painted colour for 96% of boxes and
    99% of backgrounds (200 samples); misses are mostly striped or patterned backgrounds.

    Args:
        image: ``HxWx3`` uint8 RGB.
        ink_mask: ``HxW`` boolean (or 0-255) array, true where the glyph has ink.
        boxes: Pixel boxes ``(x0, y0, x1, y1)`` of the layout, in order.
        min_pixels: Fewer pixels than this gives ``None`` for that colour.
        background_margin: Pixels added around each box before taking the background.

    Returns:
        ``(text colour per box, background colour)``; ``None`` where there were too few pixels.

    Raises:
        ValueError: the image and the mask differ in size, or the image is not ``HxWx3``.
    """
    image = np.asarray(image)
    mask = np.asarray(ink_mask)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"estimate_colors: expected an HxWx3 RGB image, got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"estimate_colors: ink mask {mask.shape} does not match the image {image.shape[:2]}")
    ink = mask if mask.dtype == bool else mask > 127
    height, width = ink.shape
    clipped = []
    outside = np.ones_like(ink)
    for x0, y0, x1, y1 in boxes:
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(width, int(x1)), min(height, int(y1))
        clipped.append((x0, y0, x1, y1))
        m = background_margin
        outside[max(0, y0 - m) : min(height, y1 + m), max(0, x0 - m) : min(width, x1 + m)] = False
    background = _median_rgb(image[outside]) if outside.sum() >= min_pixels else None
    text_colors: list[RGB | None] = []
    for x0, y0, x1, y1 in clipped:
        if x1 <= x0 or y1 <= y0:
            text_colors.append(None)
            continue
        text_colors.append(_text_color(image[y0:y1, x0:x1], ink[y0:y1, x0:x1], background, min_pixels))
    return text_colors, background


# ---------------------------------------------------------------------------------------------- aggregates


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean, ``None`` for no values (a metric that could not be computed is not a zero)."""
    values = [float(v) for v in values]
    return math.fsum(values) / len(values) if values else None
