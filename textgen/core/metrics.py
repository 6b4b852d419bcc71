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
  pixels and of the background, each assigned to its nearest named colour in CIELAB:
  :func:`textgen.core.colors.estimate_colors`, :func:`textgen.core.colors.color_match`.

One normalisation is applied everywhere and stated once here: runs of whitespace (including line breaks) become
one space and ends are stripped (:func:`normalize_spaces`), since OCR cannot report a line break inside a box.
Case, punctuation and accents always count unless a metric's docstring says otherwise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

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


def ocr_score(reads: Sequence[str], targets: Sequence[str]) -> float:
    """How well one image's words read back: the mean :func:`ned` over its boxes (1 = every box read exactly).

    The score best-of-N ranks candidates by and region repair keeps the best reading with. Every box counts the
    same, whatever its length; an image with no boxes scores 0.

    Raises:
        ValueError: ``reads`` and ``targets`` differ in length (one reading per box is expected).
    """
    if len(reads) != len(targets):
        raise ValueError(f"ocr_score: {len(reads)} readings for {len(targets)} boxes")
    if not targets:
        return 0.0
    return sum(ned(read, target) for read, target in zip(reads, targets)) / len(targets)


def best_first(scores: Sequence[float]) -> list[int]:
    """Indices of ``scores`` from the highest to the lowest; ties keep their original order (the first generated
    candidate, or the first seed, wins)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


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


# ---------------------------------------------------------------------------------------------- aggregates


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean, ``None`` for no values (a metric that could not be computed is not a zero)."""
    values = [float(v) for v in values]
    return math.fsum(values) / len(values) if values else None
