"""What the web app does, without the web: plan, preview, generate, each returning plain data.

:class:`Studio` holds the app's options and a cache of loaded pipelines (one per model, loaded on first use), and
exposes the three actions of the page as methods. Errors a person can fix come out as :class:`UIError` with one
readable message (:func:`friendly_error` turns library errors into such messages); the Gradio layer in
:mod:`textgen.ui.app` only moves values between these methods and widgets.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from textgen.core.layout import Layout, LayoutError
from textgen.ui.table import CanvasSize, layout_to_rows, rows_to_layout

SHIPPED = "textgen-tiny (shipped)"  # how the model shipped in the package appears in the model box
MAX_BEST_OF = 16
MAX_STEPS = 200


class UIError(Exception):
    """An error to show in the page as one message (bad input, missing model, out of memory...)."""


@dataclass(frozen=True)
class StudioOptions:
    """How the app loads and runs models.

    Args:
        model: Model preselected in the page: ``None`` for the shipped one, a preset name, or a folder.
        controlnet: ControlNet folder or hub id for models that need one (``sd15-glyph``, a plain SD base).
        planner: Layout planner: ``"rule"`` or an LLM planner folder.
        device: ``"cpu"``, ``"cuda"``...; ``None`` picks CUDA when available.
        dtype: ``"fp32"`` (default), ``"fp16"`` or ``"bf16"``.
        local_files_only: Never touch the network when loading models (always true for the shipped model).
        canvas: Default editing canvas in pixels.
        max_models: Pipelines kept loaded at once (the least recently used one is dropped first).
        output_dir: Where downloads are written (default: a fresh temporary folder).
    """

    model: str | None = None
    controlnet: str | None = None
    planner: str = "rule"
    device: str | None = None
    dtype: str = "fp32"
    local_files_only: bool = False
    canvas: CanvasSize = field(default_factory=CanvasSize)
    max_models: int = 2
    output_dir: str | None = None


@dataclass
class Preview:
    """A layout checked and rendered for the editor.

    Attributes:
        layout: The layout the table describes.
        glyph: Its glyph image at the canvas size (black text on white).
        canvas: What the drag-and-drop canvas draws: the glyph as a data URL and the boxes in pixels.
        files: ``layout.json`` and ``glyph.png`` of this layout, for download.
        message: One line for the status box.
    """

    layout: Layout
    glyph: Image.Image
    canvas: dict[str, Any]
    files: dict[str, Path]
    message: str


@dataclass
class Generation:
    """The result of one Generate click.

    Attributes:
        images: Generated images, best first when OCR scored them.
        scores: OCR score per image (mean NED over boxes, 1 = every word read exactly), or ``None``.
        ocr_texts: What OCR read in each box of each image, or ``None``.
        layout: The layout painted, at the output size.
        glyph: The glyph image the model saw.
        files: Downloads: ``poster.png`` (the best), every candidate, ``layout.json``, ``glyph.png``.
        message: One line for the status box.
    """

    images: list[Image.Image]
    scores: list[float] | None
    ocr_texts: list[list[str]] | None
    layout: Layout
    glyph: Image.Image
    files: list[Path]
    message: str

    def captions(self) -> list[str]:
        """Gallery captions: rank, OCR score and what OCR read."""
        out = []
        for i, _ in enumerate(self.images):
            if self.scores is None:
                out.append(f"#{i + 1}")
                continue
            reads = [t for t in (self.ocr_texts[i] if self.ocr_texts else []) if t.strip()]
            out.append(f"#{i + 1} · OCR score {self.scores[i]:.2f} · read: {' | '.join(reads) or '(nothing)'}")
        return out

    def score_rows(self) -> list[list[Any]]:
        """Rows of the scores table: rank, score, and per box what it should say and what OCR read."""
        if self.scores is None:
            return []
        rows = []
        for i, score in enumerate(self.scores):
            read = self.ocr_texts[i] if self.ocr_texts else []
            pairs = "; ".join(f"{want!r} -> {got!r}" for want, got in zip(self.layout.texts, read))
            rows.append([i + 1, round(score, 3), pairs])
        return rows


def friendly_error(err: BaseException) -> str:
    """One line a person can act on, for any error an action may raise."""
    name = type(err).__name__
    text = " ".join(str(err).split()) or name
    if name == "OutOfMemoryError" or isinstance(err, MemoryError) or "out of memory" in text.lower():
        return (
            f"out of memory while generating ({text[:160]}): try a smaller best-of, fewer steps, a smaller output "
            "size, or --dtype fp16 / --cpu-offload on a GPU"
        )
    if name == "OCRError" or (isinstance(err, ImportError) and "ocr" in text.lower()):
        return f"OCR is not available ({text}): install it with pip install 'textgen[ocr]', or set best-of to 1"
    if isinstance(err, (UIError, LayoutError)):
        return text
    if isinstance(err, FileNotFoundError):
        return f"not found: {text}"
    if isinstance(err, OSError):
        return f"model could not be loaded: {text}"
    return f"{name}: {text}" if name not in ("ValueError", "CommandError", "RuntimeError") else text


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)  # speed over size: this is a preview
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def canvas_value(layout: Layout, glyph: Image.Image) -> dict[str, Any]:
    """What the editor's canvas draws: the glyph as a data URL and each box in pixels with its label and colour."""
    rows = layout_to_rows(layout)
    return {
        "src": _data_url(glyph),
        "w": layout.width,
        "h": layout.height,
        "boxes": [[float(v) for v in row[1:5]] for row in rows],
        "labels": [f"{i + 1}. {box.text}" for i, box in enumerate(layout.boxes)],
        "colors": [box.color or "#1f6feb" for box in layout.boxes],
    }


def empty_canvas(canvas: CanvasSize) -> dict[str, Any]:
    return {"src": "", "w": canvas.width, "h": canvas.height, "boxes": [], "labels": [], "colors": []}


def model_defaults(model: str | None) -> tuple[int, float]:
    """Default steps and guidance of a model, read from its saved config without loading it."""
    from textgen.pipeline import CONFIG_NAME, PipelineConfig

    defaults = PipelineConfig()
    try:
        folder = resolve_model_choice(model)
    except UIError:
        return defaults.num_inference_steps, defaults.guidance_scale
    config = Path(str(folder)) / CONFIG_NAME
    if config.is_file():
        try:
            saved = PipelineConfig.load(config)
            return int(saved.num_inference_steps), float(saved.guidance_scale)
        except (ValueError, TypeError):
            pass
    return defaults.num_inference_steps, defaults.guidance_scale


def resolve_model_choice(choice: str | None) -> str | Path:
    """The model to load for what the model box says: the shipped model, a preset, a folder or a hub id.

    Raises:
        UIError: the shipped model is missing, or a path that does not exist.
    """
    from textgen.pipeline import PRESETS, resolve_model

    choice = (choice or "").strip()
    try:
        if choice.count("/") != 1 and choice not in PRESETS and choice != SHIPPED and choice:
            path = Path(choice).expanduser()
            if not path.exists():  # not a hub id (owner/name) either
                raise FileNotFoundError(f"{choice} is neither a preset ({', '.join(PRESETS)}) nor an existing folder")
        return resolve_model(None if choice == SHIPPED else choice)
    except FileNotFoundError as err:
        raise UIError(f"model not found: {err}") from err


class PipelineCache:
    """Loaded pipelines by model, each loaded once (thread-safe), the least recently used dropped past ``size``."""

    def __init__(self, options: StudioOptions):
        self.options = options
        self._pipes: OrderedDict[tuple[str, str | None], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.run_lock = threading.Lock()  # one generation at a time: the models are shared

    def get(self, choice: str | None, controlnet: str | None = None) -> Any:
        model = resolve_model_choice(choice)
        controlnet = (controlnet or "").strip() or self.options.controlnet
        key = (str(model), controlnet)
        with self._lock:
            if key in self._pipes:
                self._pipes.move_to_end(key)
                return self._pipes[key]
            pipe = self._load(model, controlnet, shipped=not (choice or "").strip() or choice == SHIPPED)
            self._pipes[key] = pipe
            while len(self._pipes) > max(1, self.options.max_models):
                self._pipes.popitem(last=False)
            return pipe

    def _load(self, model: str | Path, controlnet: str | None, shipped: bool) -> Any:
        import torch

        from textgen.pipeline import PosterPipeline, SpeedOptions

        device = self.options.device or ("cuda" if torch.cuda.is_available() else "cpu")
        return PosterPipeline.from_pretrained(
            model,
            controlnet,
            planner=self.options.planner,
            local_files_only=self.options.local_files_only or shipped,
            device=device,
            speed=SpeedOptions(dtype=self.options.dtype),
        )

    def __len__(self) -> int:
        return len(self._pipes)


def _int_field(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number.is_integer() or not low <= number <= high:
        raise UIError(f"{name}: expected a whole number in [{low}, {high}], got {value!r}")
    return int(number)


def parse_output_size(value: str | None) -> tuple[int | None, int | None]:
    """``"WxH"`` (or blank for the model's size) from the output-size box."""
    import argparse

    from textgen.core.cliargs import parse_size

    if value is None or not str(value).strip():
        return None, None
    try:
        return parse_size(str(value).strip())
    except argparse.ArgumentTypeError as err:
        raise UIError(f"output size: {err}") from err


class Studio:
    """The page's actions: plan a layout, preview an edited one, generate.

    Args:
        options: :class:`StudioOptions`.
        planner: A planner object to use instead of loading ``options.planner`` (tests pass one).
    """

    def __init__(self, options: StudioOptions | None = None, planner: Any = None):
        self.options = options or StudioOptions()
        self.pipelines = PipelineCache(self.options)
        self._planner = planner
        self._planner_lock = threading.Lock()
        self._counter = 0
        self._counter_lock = threading.Lock()
        if self.options.output_dir:
            self.output_dir = Path(self.options.output_dir)
            self.output_dir.mkdir(parents=True, exist_ok=True)
        else:
            import tempfile

            self.output_dir = Path(tempfile.mkdtemp(prefix="textgen-ui-"))

    # ----------------------------------------------------------------------------------------------- helpers
    @property
    def planner(self) -> Any:
        with self._planner_lock:
            if self._planner is None:
                from layout_model import load_planner

                self._planner = load_planner(self.options.planner)
            return self._planner

    def _new_dir(self, kind: str) -> Path:
        with self._counter_lock:
            self._counter += 1
            folder = self.output_dir / f"{kind}-{self._counter:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # ------------------------------------------------------------------------------------------------ actions
    def plan(self, prompt: str, width: Any, height: Any, seed: Any = 0) -> tuple[list[list[Any]], Preview]:
        """Plans a layout for ``prompt`` on the canvas and renders it.

        Returns:
            The table rows and the :class:`Preview`.

        Raises:
            UIError: an empty prompt, a bad canvas size or seed, or a prompt with nothing to paint.
        """
        canvas = CanvasSize.parse(width, height)
        if not isinstance(prompt, str) or not prompt.strip():
            raise UIError('prompt: type what to paint, with the words in quotes, e.g. a poster that says "OPEN"')
        plan_seed = _int_field(seed, "seed", 0, 2**32 - 1)
        layout = self.planner.plan(prompt, width=canvas.width, height=canvas.height, seed=plan_seed)
        rows = layout_to_rows(layout)
        preview = self.preview(rows, canvas.width, canvas.height, caption=prompt)
        if not rows:
            preview.message = (
                'the prompt quotes no words, so the layout is empty: put the words in quotes ("SALE") or add a box'
            )
        return rows, preview

    def preview(self, rows: Any, width: Any, height: Any, caption: str | None = None) -> Preview:
        """Checks the table and renders its glyph image (what the editor shows after every edit).

        Raises:
            UIError / TableError: naming the row and the column to fix.
        """
        from textgen.core.glyph import render_glyph

        canvas = CanvasSize.parse(width, height)
        start = time.perf_counter()
        layout = rows_to_layout(rows, canvas, caption=caption)
        glyph = render_glyph(layout)
        elapsed = (time.perf_counter() - start) * 1000
        folder = self._new_dir("layout")
        files = {"layout": folder / "layout.json", "glyph": folder / "glyph.png"}
        layout.save(files["layout"])
        glyph.save(files["glyph"])
        n = len(layout.boxes)
        boxes = f"{n} box{'es' if n != 1 else ''}"
        message = f"{boxes} on {canvas.width}x{canvas.height}, glyph rendered in {elapsed:.0f} ms"
        return Preview(layout=layout, glyph=glyph, canvas=canvas_value(layout, glyph), files=files, message=message)

    def generate(
        self,
        prompt: str,
        rows: Any,
        width: Any,
        height: Any,
        *,
        model: str | None = None,
        controlnet: str | None = None,
        seed: Any = 0,
        steps: Any = None,
        guidance: Any = None,
        best_of: Any = 1,
        output_size: str | None = None,
    ) -> Generation:
        """Paints the edited layout with a model and scores the images with OCR.

        Args:
            prompt: The prompt (describes the picture; the words come from the table).
            rows: The layout table.
            width: Canvas width the table's pixels refer to.
            height: Canvas height.
            model: What the model box says (see :func:`resolve_model_choice`).
            controlnet: ControlNet for models that need one.
            seed: Generation seed.
            steps: Denoising steps (``None``: the model's default).
            guidance: Classifier-free guidance (``None``: the model's default).
            best_of: Candidates to generate and rank by OCR.
            output_size: ``"WxH"``, blank for the model's size.

        Raises:
            UIError: with a message for the page (bad input, model not found, OCR missing, out of memory...).
        """
        try:
            return self._generate(
                prompt, rows, width, height, model, controlnet, seed, steps, guidance, best_of, output_size
            )
        except UIError:
            raise
        except Exception as err:  # the page shows every failure as a message; the server keeps running
            raise UIError(friendly_error(err)) from err

    def _generate(self, prompt, rows, width, height, model, controlnet, seed, steps, guidance, best_of, output_size):
        # 1. Check the inputs before loading anything
        if not isinstance(prompt, str) or not prompt.strip():
            raise UIError("prompt: describe the picture to paint (the words come from the layout table)")
        canvas = CanvasSize.parse(width, height)
        layout = rows_to_layout(rows, canvas, caption=prompt)
        seed = _int_field(seed, "seed", 0, 2**32 - 1)
        n_best = _int_field(best_of, "best-of", 1, MAX_BEST_OF)
        steps = None if steps in (None, "", 0) else _int_field(steps, "steps", 1, MAX_STEPS)
        if guidance in (None, ""):
            guidance = None
        else:
            try:
                guidance = float(guidance)
            except (TypeError, ValueError) as err:
                raise UIError(f"guidance: expected a number, got {guidance!r}") from err
        from textgen.pipeline import sampling_problem

        problem = sampling_problem(num_inference_steps=steps, guidance_scale=guidance, best_of=n_best)
        if problem:  # the API's own ranges (NaN, infinity, negatives), before any model loads
            raise UIError(problem.replace("guidance_scale", "guidance").replace("num_inference_steps", "steps"))
        out_w, out_h = parse_output_size(output_size)

        # 2. Load the model (cached after the first call)
        pipe = self.pipelines.get(model, controlnet)
        if n_best > 1 and layout.boxes:
            _ = pipe.ocr_engine  # fail before generating when OCR is missing

        # 3. Generate, ranked by OCR when best-of > 1
        start = time.perf_counter()
        with self.pipelines.run_lock:
            out = pipe(
                prompt,
                layout=layout,
                seed=seed,
                num_inference_steps=steps,
                guidance_scale=guidance,
                best_of=n_best,
                width=out_w,
                height=out_h,
                progress=False,
            )
        elapsed = time.perf_counter() - start

        # 4. Score a single image too: the page always shows how well the words read
        scores, ocr_texts, note = out.scores, out.ocr_texts, ""
        if scores is None and out.layout.boxes:
            try:
                scores, ocr_texts = pipe.score(out.images, out.layout)
            except Exception as err:  # the image is still worth showing without its score
                note = f"; no OCR score: {friendly_error(err)}"

        # 5. Write the downloads
        folder = self._new_dir("poster")
        files = [folder / "poster.png"]
        out.images[0].save(files[0])
        if len(out.images) > 1:
            for i, image in enumerate(out.images, start=1):
                path = folder / f"candidate_{i}.png"
                image.save(path)
                files.append(path)
        out.layout.save(folder / "layout.json")
        out.glyph.save(folder / "glyph.png")
        files += [folder / "layout.json", folder / "glyph.png"]
        best = f", best OCR score {scores[0]:.2f}" if scores else ""
        size = f"{out.images[0].width}x{out.images[0].height}"
        count = f"{len(out.images)} image{'s' if len(out.images) > 1 else ''}"
        message = f"{count} at {size} in {elapsed:.1f} s{best}{note}"
        return Generation(
            images=list(out.images),
            scores=list(scores) if scores is not None else None,
            ocr_texts=ocr_texts,
            layout=out.layout,
            glyph=out.glyph,
            files=files,
            message=message,
        )

    def load_layout(self, path: str | Path, width: Any, height: Any) -> tuple[list[list[Any]], CanvasSize, str]:
        """Rows and canvas of an uploaded layout JSON (its own canvas size wins).

        Raises:
            UIError: the file is not a layout, naming the file and the field.
        """
        try:
            layout = Layout.load(path).validate()
        except (LayoutError, FileNotFoundError) as err:
            raise UIError(f"{Path(path).name}: {err}".replace(f"{path}: ", "")) from err
        canvas = CanvasSize.parse(layout.width, layout.height)
        return layout_to_rows(layout), canvas, layout.caption or ""
