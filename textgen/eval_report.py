"""Evaluation results: per-image scores, the paper-by-paper aggregates, and the JSON + HTML report."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from textgen.core.colors import ColorMatch, color_match, estimate_colors
from textgen.core.metrics import (
    LineScore,
    TargetScore,
    WordScore,
    f_measure,
    glyphcontrol_scores,
    join_detections,
    line_scores,
    mean,
    textdiffuser_scores,
)
from textgen.eval_inputs import EvalSample
from textgen.eval_read import THUMBNAIL_SIDE, EvalOptions, _to_rgb, read_boxes


# ------------------------------------------------------------------------------------------------- results
@dataclass
class ImageResult:
    """Scores of one image (see :mod:`textgen.core.metrics` for every definition).

    Attributes:
        name: The sample's name.
        texts: The intended texts.
        lines: AnyText per-line scores (``None`` without a layout).
        detections: Whole-image OCR readings, in reading order.
        targets: GlyphControl scores, one per intended text.
        words: TextDiffuser word scores.
        clip_score: CLIP score with the prompt, when a scorer and a prompt were given.
        text_colors: Colour check of each box (``None`` where no colour was intended or measurable).
        background_color: Colour check of the background.
        seconds: Time spent on this image.
        error: Why the image could not be evaluated (then every score is empty).
        notes: Parts that were skipped and why (e.g. an intended colour the palette cannot name).
    """

    name: str
    texts: list[str]
    path: str | None = None
    prompt: str | None = None
    size: tuple[int, int] | None = None
    lines: list[LineScore] | None = None
    detections: list[str] = field(default_factory=list)
    targets: list[TargetScore] = field(default_factory=list)
    words: WordScore | None = None
    clip_score: float | None = None
    text_colors: list[ColorMatch | None] | None = None
    background_color: ColorMatch | None = None
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    thumbnail: Image.Image | None = field(default=None, repr=False)
    glyph_thumbnail: Image.Image | None = field(default=None, repr=False)

    def scores(self) -> dict[str, float | None]:
        """This image's headline numbers (means over its lines / texts)."""
        lines = self.lines or []
        return {
            "sentence_accuracy": mean([line.exact for line in lines]),
            "ned": mean([line.ned for line in lines]),
            "acc": mean([t.acc for t in self.targets]),
            "acc_case_insensitive": mean([t.acc_case_insensitive for t in self.targets]),
            "ld": mean([t.ld for t in self.targets]),
            "precision": self.words.precision if self.words else None,
            "recall": self.words.recall if self.words else None,
            "f_measure": self.words.f_measure if self.words else None,
            "accuracy": float(self.words.accuracy) if self.words else None,
            "clip_score": self.clip_score,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "prompt": self.prompt,
            "size": list(self.size) if self.size else None,
            "texts": self.texts,
            "error": self.error,
            "scores": self.scores(),
            "lines": [line.to_dict() for line in self.lines] if self.lines is not None else None,
            "ocr": {"detections": self.detections, "text": join_detections(self.detections)},
            "targets": [t.to_dict() for t in self.targets],
            "words": self.words.to_dict() if self.words else None,
            "text_colors": [c.to_dict() if c else None for c in self.text_colors] if self.text_colors else None,
            "background_color": self.background_color.to_dict() if self.background_color else None,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


def aggregate(results: Sequence[ImageResult]) -> dict[str, Any]:
    """Pools per-image results the way each paper does.

    * AnyText: Sentence Accuracy and NED are means over all *lines* (boxes) of all images.
    * GlyphControl: Acc, case-insensitive Acc and LD are means over all intended texts (one per image in their
      benchmark); ``ld_detected`` averages LD only over images where OCR read something (their script's
      convention).
    * TextDiffuser: precision and recall are means over images; the F-measure is computed from those two means
      (not the mean of per-image F-measures); accuracy is the fraction of images whose words all read exactly.
    * Colour: the fraction of boxes (text) and images (background) whose measured colour is nearest the
      intended one, over those with an intended colour.
    """
    ok = [r for r in results if r.error is None]
    lines = [line for r in ok for line in (r.lines or [])]
    targets = [t for r in ok for t in r.targets]
    words = [r.words for r in ok if r.words is not None]
    precision = mean([w.precision for w in words])
    recall = mean([w.recall for w in words])
    clip = [r.clip_score for r in ok if r.clip_score is not None]
    text_colors = [c for r in ok for c in (r.text_colors or []) if c is not None]
    backgrounds = [r.background_color for r in ok if r.background_color is not None]
    return {
        "images": {"total": len(results), "evaluated": len(ok), "failed": len(results) - len(ok)},
        "anytext": {
            "sentence_accuracy": mean([line.exact for line in lines]),
            "ned": mean([line.ned for line in lines]),
            "lines": len(lines),
        },
        "glyphcontrol": {
            "acc": mean([t.acc for t in targets]),
            "acc_case_insensitive": mean([t.acc_case_insensitive for t in targets]),
            "ld": mean([t.ld for t in targets]),
            "ld_detected": mean([t.ld for t in targets if t.detected]),
            "texts": len(targets),
        },
        "textdiffuser": {
            "precision": precision,
            "recall": recall,
            "f_measure": f_measure(precision, recall) if words else None,
            "accuracy": mean([w.accuracy for w in words]),
            "images": len(words),
        },
        "clip_score": {"mean": mean(clip), "images": len(clip)},
        "color": {
            "text_accuracy": mean([c.match for c in text_colors]),
            "text_boxes": len(text_colors),
            "background_accuracy": mean([c.match for c in backgrounds]),
            "backgrounds": len(backgrounds),
        },
        "seconds_per_image": mean([r.seconds for r in ok]),
    }


@dataclass
class EvalReport:
    """Per-image results and their aggregates (:func:`aggregate`).

    Attributes:
        results: One :class:`ImageResult` per image, in input order.
        engine: Name of the OCR engine.
        options: The :class:`EvalOptions` used.
        meta: Anything else worth recording (model, steps, seeds...).
    """

    results: list[ImageResult]
    engine: str = "ocr"
    options: EvalOptions = field(default_factory=EvalOptions)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def aggregates(self) -> dict[str, Any]:
        return aggregate(self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "options": self.options.to_dict(),
            "meta": self.meta,
            "aggregates": self.aggregates,
            "images": [r.to_dict() for r in self.results],
        }

    def summary(self) -> str:
        """A short plain-text table of the aggregates."""
        agg = self.aggregates
        rows = [
            ("images evaluated", f"{agg['images']['evaluated']} / {agg['images']['total']}"),
            (
                "AnyText Sentence Acc",
                _fmt(agg["anytext"]["sentence_accuracy"]) + f"  ({agg['anytext']['lines']} lines)",
            ),
            ("AnyText NED", _fmt(agg["anytext"]["ned"])),
            ("GlyphControl Acc", _fmt(agg["glyphcontrol"]["acc"]) + f"  ({agg['glyphcontrol']['texts']} texts)"),
            ("GlyphControl Acc (case-insens.)", _fmt(agg["glyphcontrol"]["acc_case_insensitive"])),
            ("GlyphControl LD", _fmt(agg["glyphcontrol"]["ld"], 2)),
            (
                "TextDiffuser P / R / F",
                " / ".join(_fmt(agg["textdiffuser"][k]) for k in ("precision", "recall", "f_measure")),
            ),
            ("TextDiffuser accuracy", _fmt(agg["textdiffuser"]["accuracy"])),
        ]
        if agg["clip_score"]["images"]:
            rows.append(("CLIP score", _fmt(agg["clip_score"]["mean"])))
        if agg["color"]["text_boxes"]:
            rows.append(
                ("text colour match", _fmt(agg["color"]["text_accuracy"]) + f"  ({agg['color']['text_boxes']} boxes)")
            )
        if agg["color"]["backgrounds"]:
            rows.append(("background colour match", _fmt(agg["color"]["background_accuracy"])))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Writes ``report.json``, ``report.html`` and ``thumbs/`` (the images the page shows) into ``out_dir``.

        Returns:
            ``{"json": path, "html": path}``.
        """
        out = Path(out_dir)
        thumbs = out / "thumbs"
        thumbs.mkdir(parents=True, exist_ok=True)
        links: list[tuple[str | None, str | None]] = []
        for i, r in enumerate(self.results):
            image_link = glyph_link = None
            if r.thumbnail is not None:
                image_link = f"thumbs/{i:04d}.png"
                r.thumbnail.save(out / image_link)
            if r.glyph_thumbnail is not None:
                glyph_link = f"thumbs/{i:04d}_glyph.png"
                r.glyph_thumbnail.save(out / glyph_link)
            links.append((image_link, glyph_link))
        data = self.to_dict()
        for item, (image_link, glyph_link) in zip(data["images"], links):
            item["thumbnail"], item["glyph_thumbnail"] = image_link, glyph_link
        json_path, html_path = out / "report.json", out / "report.html"
        json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        html_path.write_text(render_html(data), encoding="utf-8")
        return {"json": json_path, "html": html_path}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _thumbnail(image: Image.Image) -> Image.Image:
    thumb = _to_rgb(image).copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return thumb


def _check_colors(
    sample: EvalSample, image: Image.Image, palette: Mapping[str, Any]
) -> tuple[list[ColorMatch | None] | None, ColorMatch | None]:
    layout = sample.layout
    if layout is None:
        return None, None
    box_targets = [b.color or sample.text_color for b in layout.boxes]
    if not any(box_targets) and not sample.background_color:
        return None, None
    from textgen.core.glyph import render_glyph

    sized = layout.resized(image.width, image.height)
    mask = np.asarray(render_glyph(sized, mask=True))
    estimated_text, estimated_bg = estimate_colors(np.asarray(image), mask, sized.pixel_boxes())
    text_colors = [
        color_match(est, target, palette) if target and est is not None else None
        for est, target in zip(estimated_text, box_targets)
    ]
    background = None
    if sample.background_color and estimated_bg is not None:
        background = color_match(estimated_bg, sample.background_color, palette)
    return text_colors, background


def score_sample(
    sample: EvalSample,
    engine: Any,
    options: EvalOptions | None = None,
    clip: Callable[[Sequence[Image.Image], Sequence[str]], list[float]] | None = None,
    image: Image.Image | None = None,
) -> ImageResult:
    """Scores one sample (OCR per box, OCR of the whole image, CLIP, colours). Errors propagate."""
    opts = options or EvalOptions()
    start = time.perf_counter()
    image = _to_rgb(image if image is not None else sample.load_image())
    result = ImageResult(
        name=sample.name,
        texts=list(sample.texts),
        path=str(sample.path) if sample.path is not None else None,
        prompt=sample.prompt,
        size=image.size,
    )
    # 1. Per box: AnyText's line metrics from crops
    if sample.layout is not None and sample.layout.boxes:
        result.lines = line_scores(read_boxes(image, sample.layout, engine, opts), sample.layout.texts)
    # 2. Whole image: GlyphControl's and TextDiffuser's metrics
    result.detections = [d.text for d in engine.read(image)]
    result.targets = glyphcontrol_scores(result.detections, sample.texts)
    result.words = textdiffuser_scores(result.detections, sample.texts)
    # 3. CLIP score with the prompt
    if clip is not None and sample.prompt:
        result.clip_score = float(clip([image], [sample.prompt])[0])
    # 4. Colours named by the prompt (secondary: a colour name the palette cannot resolve is noted, not fatal)
    try:
        result.text_colors, result.background_color = _check_colors(sample, image, opts.palette_colors())
    except ValueError as err:
        result.notes.append(f"colour check skipped: {err}")
    result.thumbnail = _thumbnail(image)
    result.glyph_thumbnail = _thumbnail(sample.glyph) if sample.glyph is not None else None
    result.seconds = time.perf_counter() - start
    return result


# ----------------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #ccc;border-radius:6px;padding:8px;width:540px}
.card img{width:256px;height:auto;image-rendering:pixelated;border:1px solid #eee}.ok{color:#0a7a2f}.bad{color:#c0142b}
.err{background:#fff0f0}.sw{display:inline-block;width:12px;height:12px;border:1px solid #888;vertical-align:middle}
code{background:#f4f4f4;padding:0 3px}.small{font-size:12px;color:#555}
"""


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _mark(ok: bool) -> str:
    return '<span class="ok">&#10003;</span>' if ok else '<span class="bad">&#10007;</span>'


def _swatch(hex_color: str) -> str:
    return f'<span class="sw" style="background:{html.escape(hex_color)}"></span>'


def render_html(data: Mapping[str, Any]) -> str:
    """The report page: aggregates, then a card per image (thumbnail, glyph, intended vs read, scores)."""
    agg = data["aggregates"]
    e = html.escape
    rows = [
        (
            "AnyText Sentence Accuracy",
            agg["anytext"]["sentence_accuracy"],
            f"{agg['anytext']['lines']} lines; box crop read exactly",
        ),
        ("AnyText NED", agg["anytext"]["ned"], "1 - edit distance / max length, per line"),
        (
            "GlyphControl Acc",
            agg["glyphcontrol"]["acc"],
            f"{agg['glyphcontrol']['texts']} texts; found among whole-image readings",
        ),
        ("GlyphControl Acc (case-insensitive)", agg["glyphcontrol"]["acc_case_insensitive"], ""),
        (
            "GlyphControl LD",
            agg["glyphcontrol"]["ld"],
            f"Levenshtein distance; {_fmt(agg['glyphcontrol']['ld_detected'], 2)} over images with any reading",
        ),
        ("TextDiffuser precision", agg["textdiffuser"]["precision"], "lower-cased words, mean over images"),
        ("TextDiffuser recall", agg["textdiffuser"]["recall"], ""),
        ("TextDiffuser F-measure", agg["textdiffuser"]["f_measure"], "from the mean precision and recall"),
        ("TextDiffuser accuracy", agg["textdiffuser"]["accuracy"], "all words read, nothing extra"),
        ("CLIP score", agg["clip_score"]["mean"], f"{agg['clip_score']['images']} images"),
        ("text colour match", agg["color"]["text_accuracy"], f"{agg['color']['text_boxes']} boxes"),
        ("background colour match", agg["color"]["background_accuracy"], f"{agg['color']['backgrounds']} images"),
    ]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>textgen evaluation</title>",
        f"<style>{_CSS}</style></head><body><h1>textgen evaluation</h1>",
        f"<p>OCR engine <code>{e(str(data['engine']))}</code>; {agg['images']['evaluated']} of "
        f"{agg['images']['total']} images evaluated ({agg['images']['failed']} failed); "
        f"{_fmt(agg['seconds_per_image'], 2)} s per image.</p>",
        "<table><tr><th>metric</th><th>value</th><th>note</th></tr>",
        *(f"<tr><td>{e(k)}</td><td><b>{_cell(v)}</b></td><td class='small'>{e(n)}</td></tr>" for k, v, n in rows),
        "</table><h2>Images</h2><div class='grid'>",
    ]
    for item in data["images"]:
        parts.append(f"<div class='card{' err' if item['error'] else ''}'>")
        parts.append(f"<div><b>{e(item['name'])}</b></div>")
        if item.get("prompt"):
            parts.append(f"<div class='small'>{e(item['prompt'])}</div>")
        for key in ("thumbnail", "glyph_thumbnail"):
            if item.get(key):
                parts.append(f"<img src='{e(item[key])}' alt='{e(item['name'])}' loading='lazy'> ")
        if item["error"]:
            parts.append(f"<p class='bad'>not evaluated: {e(item['error'])}</p></div>")
            continue
        for note in item["notes"]:
            parts.append(f"<div class='small bad'>{e(note)}</div>")
        parts.append("<table><tr><th>intended</th><th>read in box</th><th></th><th>NED</th></tr>")
        if item["lines"] is not None:
            for line in item["lines"]:
                parts.append(
                    f"<tr><td><code>{e(line['target'])}</code></td><td><code>{e(line['read'])}</code></td>"
                    f"<td>{_mark(line['exact'])}</td><td>{line['ned']:.3f}</td></tr>"
                )
        else:
            parts.append("<tr><td colspan='4' class='small'>no layout: per-box metrics skipped</td></tr>")
        parts.append("</table>")
        parts.append(f"<div>whole image: <code>{e(item['ocr']['text'])}</code></div>")
        s = item["scores"]
        parts.append(
            f"<div class='small'>Acc {_cell(s['acc'])} &middot; Acc-ci {_cell(s['acc_case_insensitive'])} &middot; "
            f"LD {_cell(s['ld'])} &middot; P {_cell(s['precision'])} R {_cell(s['recall'])} F {_cell(s['f_measure'])} "
            f"&middot; word acc {_cell(s['accuracy'])}"
            + (f" &middot; CLIP {_cell(s['clip_score'])}" if s["clip_score"] is not None else "")
            + "</div>"
        )
        colours = [("text", c) for c in (item["text_colors"] or []) if c] + (
            [("background", item["background_color"])] if item["background_color"] else []
        )
        for label, c in colours:
            parts.append(
                f"<div class='small'>{label}: {_swatch(c['estimated'])} reads as {e(c['nearest'])}, intended "
                f"{e(' / '.join(c['intended']))} {_mark(c['match'])}</div>"
            )
        parts.append("</div>")
    parts.append("</div></body></html>\n")
    return "\n".join(parts)
