"""Captions: keep the source caption, optionally (re)caption with an image-to-text model, and build the training
caption that names the rendered words.

* :class:`Captioner` loads any transformers image-to-text model (BLIP, GIT, Florence-2, a
  VisionEncoderDecoder, a VLM...) by hub id or local folder with ``from_pretrained`` -- the same call for a
  user's model and for the tests' tiny one -- and captions PIL images in batches under ``torch.no_grad``.
  ``trust_remote_code`` is off unless asked for.
* :func:`training_caption` makes the form the planner and the ControlNet train on: the caption followed by
  the words in the image, ``a shop front that reads "OPEN" "24/7"``, with a configurable template.
* :class:`CaptionStage` is the batch stage doing both for the prep job.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

DTYPES = ("float32", "bfloat16", "float16", "auto")
RECAPTION_MODES = ("missing", "always")


# -------------------------------------------------------------------------------------- training caption
@dataclass(frozen=True)
class TrainingCaptionOptions:
    """How the training caption is written.

    Args:
        template: Caption with words; ``{caption}`` and ``{words}`` are filled in.
        word_template: One word/line of text; ``{text}`` is filled in (``'"*"'`` writes AnyText-style
            placeholders instead of the words).
        separator: Between words.
        empty_caption: Stands in for ``{caption}`` when a sample has no caption.
        max_words: Most boxes named (reading order); ``None`` names all.
    """

    template: str = "{caption} that reads {words}"
    word_template: str = '"{text}"'
    separator: str = " "
    empty_caption: str = "an image"
    max_words: int | None = None

    def validate(self) -> TrainingCaptionOptions:
        if "{words}" not in self.template:
            raise ValueError(f"training caption template {self.template!r} must contain {{words}}")
        try:
            self.template.format(caption="c", words="w")
            self.word_template.format(text="t")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"training caption template: {err!r}; only {{caption}}, {{words}}, {{text}} exist"
            ) from err
        if self.max_words is not None and self.max_words < 1:
            raise ValueError(f"max_words must be >= 1 or None, got {self.max_words}")
        return self


def training_caption(caption: str | None, texts: Sequence[str], options: TrainingCaptionOptions | None = None) -> str:
    """The caption followed by the words in the image.

    Args:
        caption: The image caption (source or captioner); empty/None uses ``options.empty_caption``.
        texts: The kept OCR texts in reading order.
        options: Templates.

    Returns:
        E.g. ``'a shop front that reads "OPEN" "24/7"'``; the caption alone when there are no words.
    """
    opts = options or TrainingCaptionOptions()
    base = " ".join((caption or "").split()).rstrip(" .")  # "A sign." + " that reads" must not keep the period
    words = [t.strip() for t in texts if t.strip()]
    if opts.max_words is not None:
        words = words[: opts.max_words]
    if not words:
        return base
    rendered = opts.separator.join(opts.word_template.format(text=w) for w in words)
    return opts.template.format(caption=base or opts.empty_caption, words=rendered).strip()


# ---------------------------------------------------------------------------------------------- captioner
@dataclass(frozen=True)
class CaptionerOptions:
    """Which image-to-text model writes captions, and how it runs.

    Args:
        model: Hub id or local folder of a transformers image-to-text model; ``None`` keeps source captions only.
        mode: ``"missing"``: caption only samples without a source caption; ``"always"``: replace every caption.
        prompt: Text prompt for conditional captioners (BLIP: ``"a picture of"``; Florence-2:
            ``"<MORE_DETAILED_CAPTION>"``; a chat VLM: its formatted chat prompt); stripped from the output.
        batch_size: Images per ``generate`` call.
        max_new_tokens: Longest caption in tokens.
        num_beams: Beam search width (1 = greedy).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or ``"auto"`` (CUDA when available).
        dtype: ``"float32"`` (default: full precision, as diffusers loads), ``"bfloat16"``, ``"float16"``, ``"auto"``.
        trust_remote_code: Run model code from the model repository (needed by some models; off by default).
        revision: Hub revision to pin.
        local_files_only: Never touch the network (the model must be on disk or in the cache).
    """

    model: str | None = None
    mode: str = "missing"
    prompt: str | None = None
    batch_size: int = 8
    max_new_tokens: int = 40
    num_beams: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    trust_remote_code: bool = False
    revision: str | None = None
    local_files_only: bool = False

    def validate(self) -> CaptionerOptions:
        if self.mode not in RECAPTION_MODES:
            raise ValueError(f"captioner mode must be one of {RECAPTION_MODES}, got {self.mode!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"captioner dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.num_beams < 1:
            raise ValueError("captioner batch_size, max_new_tokens and num_beams must be >= 1")
        return self


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"captioner device {device!r}: CUDA is not available on this machine")
    return device


def _resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def _dtype_keyword() -> str:
    """``from_pretrained``'s dtype argument: ``dtype`` since transformers 4.56, ``torch_dtype`` before."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


class Captioner:
    """An image-to-text model loaded once; ``captioner(images) -> captions``.

    Args:
        options: Model name/path and run settings (``options.model`` must be set).

    Raises:
        ValueError: no model given, or the model is not an image-to-text model.
        OSError: the model cannot be found (offline, a wrong id or path); the message names it.
    """

    def __init__(self, options: CaptionerOptions) -> None:
        import torch
        import transformers

        self.options = options.validate()
        if not options.model:
            raise ValueError("Captioner: no model given (a hub id or a local folder)")
        self.device = _resolve_device(options.device)
        self.dtype = _resolve_dtype(options.dtype, self.device)
        kwargs: dict[str, Any] = {
            "trust_remote_code": options.trust_remote_code,
            "revision": options.revision,
            "local_files_only": options.local_files_only,
        }
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(options.model, **kwargs)
        except OSError as err:
            raise OSError(f"captioner {options.model!r}: cannot load its processor ({err})") from err
        model = None
        errors = []
        # AutoModelForImageTextToText covers BLIP, GIT, Florence-2, VisionEncoderDecoder and VLMs (transformers 5);
        # AutoModelForVision2Seq is its older name (transformers 4.x).
        for auto_name in ("AutoModelForImageTextToText", "AutoModelForVision2Seq"):
            auto = getattr(transformers, auto_name, None)
            if auto is None:
                continue
            try:
                model = auto.from_pretrained(options.model, **{_dtype_keyword(): self.dtype}, **kwargs)
                break
            except ValueError as err:  # "Unrecognized configuration class ..." for this auto class
                errors.append(f"{auto_name}: {err}")
            except OSError as err:
                raise OSError(f"captioner {options.model!r}: cannot load its weights ({err})") from err
        if model is None:
            raise ValueError(f"captioner {options.model!r} is not an image-to-text model ({'; '.join(errors)})")
        self.model = model.to(self.device).eval()
        self._torch = torch

    @property
    def name(self) -> str:
        return str(self.options.model)

    def _generate(self, images: list[Image.Image]) -> list[str]:
        torch = self._torch
        prompt = self.options.prompt
        if prompt:
            inputs = self.processor(images=images, text=[prompt] * len(images), return_tensors="pt", padding=True)
        else:
            inputs = self.processor(images=images, return_tensors="pt")
        moved = {}
        for k, v in inputs.items():
            if hasattr(v, "to"):
                v = v.to(self.device)
                if v.is_floating_point():
                    v = v.to(self.dtype)
            moved[k] = v
        with torch.no_grad():
            out = self.model.generate(
                **moved, max_new_tokens=self.options.max_new_tokens, num_beams=self.options.num_beams, do_sample=False
            )
        ids = moved.get("input_ids")
        if ids is not None and out.shape[1] > ids.shape[1] and torch.equal(out[:, : ids.shape[1]].cpu(), ids.cpu()):
            out = out[:, ids.shape[1] :]  # decoder-only models return the prompt before the caption
        texts = self.processor.batch_decode(out, skip_special_tokens=True)
        captions = []
        for text in texts:
            text = " ".join(str(text).split())
            if prompt and text.lower().startswith(prompt.strip().lower()):
                text = text[len(prompt.strip()) :].strip()
            captions.append(text)
        return captions

    def __call__(self, images: Sequence[Image.Image]) -> list[str]:
        """Captions images in batches of ``options.batch_size``.

        Args:
            images: PIL images (any mode; converted to RGB).

        Returns:
            One caption per image (whitespace-normalised; the prompt removed).
        """
        rgb = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        out: list[str] = []
        for start in range(0, len(rgb), self.options.batch_size):
            out.extend(self._generate(rgb[start : start + self.options.batch_size]))
        return out


class CaptionStage:
    """Batch stage: sets ``caption`` (source or model), ``caption_source`` and ``training_caption``.

    Rejected rows pass through. With a captioner, rows without a source caption (``mode="missing"``) or all
    rows (``mode="always"``) are captioned from their stored image; the source caption of a replaced row is
    kept in ``source["source_caption"]`` by the writer.

    Args:
        captioner: Model options (``model=None``: keep source captions, load nothing).
        training: Training caption templates.
    """

    def __init__(
        self, captioner: CaptionerOptions | None = None, training: TrainingCaptionOptions | None = None
    ) -> None:
        self.captioner_options = (captioner or CaptionerOptions()).validate()
        self.training = (training or TrainingCaptionOptions()).validate()
        self.captioner = Captioner(self.captioner_options) if self.captioner_options.model else None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = {k: list(v) for k, v in batch.items()}
        n = len(out["key"])
        live = [i for i in range(n) if not out["reject"][i]]
        if self.captioner is not None:
            always = self.captioner_options.mode == "always"
            todo = [i for i in live if always or not out["caption"][i]]
            if todo:
                t0 = time.perf_counter()
                pixels = out.get("pixels")
                images = [
                    pixels[i] if pixels is not None and pixels[i] is not None else _open(out["image"][i]) for i in todo
                ]
                captions = self.captioner(images)
                per_image = (time.perf_counter() - t0) / len(todo)
                for i, caption in zip(todo, captions):
                    if out["caption"][i] and caption != out["caption"][i]:
                        source = json.loads(out["source"][i])
                        source["source_caption"] = out["caption"][i]
                        out["source"][i] = json.dumps(source, ensure_ascii=False, default=str)
                    out["caption"][i] = caption
                    out["caption_source"][i] = "captioner"
                    seconds = json.loads(out["seconds"][i])
                    seconds["caption"] = round(per_image, 6)
                    out["seconds"][i] = json.dumps(seconds)
        for i in live:
            texts = [b["text"] for b in json.loads(out["ocr"][i])]
            out["training_caption"][i] = training_caption(out["caption"][i], texts, self.training)
        return out


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(bytes(data)))
    image.load()
    return image
