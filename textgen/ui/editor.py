"""The Edit tab of ``textgen ui``: change the words of an existing image.

Upload an image; OCR's boxes appear as rows (what it read, the new text, the box in pixels); change a row's new text
(or add a box where OCR found nothing), run the edit, compare before and after, download. :class:`Editor` does the
work on plain data (tests call it directly); :func:`build_edit_tab` only wires Gradio widgets to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from textgen.ui.studio import MAX_BEST_OF, SHIPPED, Studio, UIError, _int_field, friendly_error

COLUMNS = ("found", "new text", "x0", "y0", "x1", "y1")
DATATYPES = ("str", "str", "number", "number", "number", "number")


@dataclass
class EditOutcome:
    """What one edit run shows: the before (boxes outlined), the after, per-box reads, the downloads."""

    before: Image.Image
    after: Image.Image
    reads: list[tuple[str, str]]  # (asked, read) per edited box
    files: list[Path]
    message: str


def _cell_number(value: Any, row: int, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):
        raise UIError(f"row {row}, {column}: expected a number of pixels, got {value!r}")
    return number


def outline(image: Image.Image, boxes: list[tuple[float, float, float, float]]) -> Image.Image:
    """A copy of ``image`` with ``boxes`` outlined (what the page shows as "before")."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width = max(1, round(min(image.size) / 200))
    for box in boxes:
        draw.rectangle(box, outline=(31, 111, 235), width=width)
    return out


class Editor:
    """The Edit tab's actions, sharing a :class:`Studio`'s loaded models and output folder."""

    def __init__(self, studio: Studio, ocr_engine: Any = None):
        self.studio = studio
        self._engine = ocr_engine

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from textgen.core.ocr import get_engine

            self._engine = get_engine("default", threads=1)
        return self._engine

    @staticmethod
    def _image(image: Any) -> Image.Image:
        if image is None:
            raise UIError("upload an image to edit first")
        if isinstance(image, (str, Path)):
            image = Image.open(image)
        if not isinstance(image, Image.Image):
            raise UIError(f"expected an image, got {type(image).__name__}")
        return image.convert("RGB")

    def find_text(self, image: Any) -> tuple[list[list[Any]], str]:
        """OCR's boxes as rows (the new text starts as what was read), and a message saying what was found."""
        picture = self._image(image)
        try:
            found = self.engine.read(picture)
        except Exception as err:
            raise UIError(f"OCR failed: {friendly_error(err)}") from err
        rows = [[b.text, b.text, *(round(v) for v in b.box)] for b in found if b.text.strip()]
        if not rows:
            return [], "OCR found no text: press Add box to choose where to write"
        return rows, f"OCR found {len(rows)} text box{'es' if len(rows) > 1 else ''}: change a row's new text"

    def add_box(self, rows: Any, image: Any) -> list[list[Any]]:
        """A new row for a box OCR did not find, centred in the image (edit its numbers)."""
        picture = self._image(image)
        w, h = picture.size
        return [*self._rows(rows), ["", "TEXT", round(w * 0.3), round(h * 0.4), round(w * 0.7), round(h * 0.6)]]

    @staticmethod
    def _rows(rows: Any) -> list[list[Any]]:
        if rows is None:
            return []
        if hasattr(rows, "values") and hasattr(rows, "columns"):  # a pandas DataFrame
            rows = rows.values.tolist()
        return [list(r) for r in rows if any(str(c).strip() for c in r if c is not None)]

    def edits(self, rows: Any, size: tuple[int, int]) -> list[tuple[str, tuple[float, float, float, float]]]:
        """The rows whose new text differs from what was found: ``(new text, pixel box)``, checked."""
        w, h = size
        out = []
        for i, row in enumerate(self._rows(rows), start=1):
            if len(row) != len(COLUMNS):
                raise UIError(f"row {i}: expected {len(COLUMNS)} cells ({', '.join(COLUMNS)}), got {len(row)}")
            found, new = str(row[0] or "").strip(), str(row[1] or "").strip()
            if not new or new == found:
                continue
            x0, y0, x1, y1 = (_cell_number(v, i, c) for v, c in zip(row[2:], COLUMNS[2:]))
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise UIError(f"row {i} ({new!r}): box {[x0, y0, x1, y1]} is empty or outside the {w}x{h} image")
            out.append((new, (x0, y0, x1, y1)))
        if not out:
            raise UIError("nothing to edit: change the new text of a row (or add a box)")
        return out

    def edit(self, image: Any, rows: Any, *, model: str | None = None, prompt: str | None = None, seed: Any = 0,
             best_of: Any = 1, steps: Any = None) -> EditOutcome:  # fmt: skip
        """Repaints the changed rows' boxes; every other pixel of the image stays as it was.

        Raises:
            UIError: with a message for the page (no image, nothing changed, a bad box, a model that cannot edit).
        """
        try:
            return self._edit(image, rows, model, prompt, seed, best_of, steps)
        except UIError:
            raise
        except Exception as err:  # every failure is a message in the page; the server keeps running
            raise UIError(friendly_error(err)) from err

    def _edit(self, image, rows, model, prompt, seed, best_of, steps) -> EditOutcome:
        from textgen.core.layout import Layout

        picture = self._image(image)
        edits = self.edits(rows, picture.size)
        seed = _int_field(seed, "seed", 0, 2**32 - 1)
        n_best = _int_field(best_of, "best-of", 1, MAX_BEST_OF)
        steps = None if steps in (None, "", 0) else _int_field(steps, "steps", 1, 200)
        layout = Layout.from_pixels(edits, picture.width, picture.height)
        layout.validate()
        pipe = self.studio.pipelines.get(model or SHIPPED)
        start = time.perf_counter()
        with self.studio.pipelines.run_lock:
            out = pipe.edit(picture, layout, prompt=(prompt or "").strip() or None, best_of=n_best, seed=seed,
                            num_inference_steps=steps)  # fmt: skip
        elapsed = time.perf_counter() - start
        folder = self.studio._new_dir("edit")
        files = [folder / "edited.png", folder / "original.png", folder / "edits.json"]
        out.images[0].save(files[0])
        picture.save(files[1])
        out.layout.save(files[2])
        reads = list(zip(out.layout.texts, out.ocr_texts[0])) if out.ocr_texts else []
        right = sum(asked == read for asked, read in reads)
        message = (f"{len(edits)} box{'es' if len(edits) > 1 else ''} edited in {elapsed:.1f} s; OCR reads {right} "
                   f"of {len(reads)} as asked")  # fmt: skip
        return EditOutcome(before=outline(picture, [b for _, b in edits]), after=out.images[0], reads=reads,
                           files=files, message=message)  # fmt: skip


def build_edit_tab(gr: Any, studio: Studio, model_choices: list[str], ok: Any, error: Any) -> None:
    """The Edit tab's widgets and wiring (call inside a ``gr.Tab`` of the page's ``gr.Blocks``)."""
    editor = Editor(studio)
    with gr.Row():
        with gr.Column(scale=3):
            image = gr.Image(label="Image to edit", type="pil", image_mode="RGB", sources=["upload"],
                             elem_id="tg-edit-image")  # fmt: skip
            with gr.Row():
                find_btn = gr.Button("Find text (OCR)", size="sm", elem_id="tg-edit-find")
                add_btn = gr.Button("Add box", size="sm", elem_id="tg-edit-add")
            rows = gr.Dataframe(headers=list(COLUMNS), datatype=list(DATATYPES), value=[], type="array",
                                interactive=True, row_count=0, label="Boxes to edit (pixels of the image)",
                                elem_id="tg-edit-table", wrap=True)  # fmt: skip
            status = gr.Markdown("", elem_id="tg-edit-status")
        with gr.Column(scale=2):
            model = gr.Dropdown(choices=model_choices, value=model_choices[0], allow_custom_value=True,
                                label="Model", elem_id="tg-edit-model")  # fmt: skip
            prompt = gr.Textbox(label="Prompt for the region (blank: a sign that reads the new text)", value="")
            with gr.Row():
                seed = gr.Number(label="Seed", value=0, precision=0, minimum=0)
                best_of = gr.Number(label="Best of N", value=1, precision=0, minimum=1, elem_id="tg-edit-best-of")
                steps = gr.Number(label="Steps (blank: the model's)", value=None, precision=0, elem_id="tg-edit-steps")
            run_btn = gr.Button("Edit", variant="primary", elem_id="tg-edit-run")
            with gr.Row():
                before = gr.Image(label="Before", interactive=False, elem_id="tg-edit-before")
                after = gr.Image(label="After", interactive=False, elem_id="tg-edit-after")
            reads = gr.Dataframe(headers=["asked", "OCR read"], datatype=["str", "str"], value=[], type="array",
                                 interactive=False, label="OCR of the edited boxes",
                                 elem_id="tg-edit-reads")  # fmt: skip
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="tg-edit-files")

    def on_find(picture):
        try:
            found, message = editor.find_text(picture)
        except UIError as err:
            return gr.skip(), error(str(err))
        return found, ok(message)

    def on_add(table, picture):
        try:
            return editor.add_box(table, picture), gr.skip()
        except UIError as err:
            return gr.skip(), error(str(err))

    def on_run(picture, table, model_choice, region_prompt, seed_value, n_best, n_steps):
        try:
            result = editor.edit(picture, table, model=model_choice, prompt=region_prompt, seed=seed_value,
                                 best_of=n_best, steps=n_steps)  # fmt: skip
        except UIError as err:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), error(str(err))
        return (result.before, result.after, [list(r) for r in result.reads], [str(p) for p in result.files],
                ok(result.message))  # fmt: skip

    find_btn.click(on_find, inputs=[image], outputs=[rows, status])
    image.upload(on_find, inputs=[image], outputs=[rows, status])
    add_btn.click(on_add, inputs=[rows, image], outputs=[rows, status])
    run_btn.click(on_run, inputs=[image, rows, model, prompt, seed, best_of, steps],
                  outputs=[before, after, reads, downloads, status])  # fmt: skip
