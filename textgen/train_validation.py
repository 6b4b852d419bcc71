"""Validation during training (images of held-out layouts, OCR-scored, with the EMA weights) and the final save."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textgen.train_args import DataArgs
from textgen.train_models import _cast, _dtype, load_models

logger = logging.getLogger("textgen.train_controlnet")


@dataclass(frozen=True)
class ValidationSample:
    prompt: str
    layout: Any  # textgen.core.layout.Layout


def load_validation_samples(data: DataArgs) -> list[ValidationSample]:
    """Validation prompts and layouts from ``--validation_layouts`` and/or ``--validation_shards``."""
    from textgen.core.layout import Layout, LayoutError

    samples: list[ValidationSample] = []
    if data.validation_layouts:
        path = Path(data.validation_layouts)
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from err
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{path}: expected a non-empty JSON list of {{'prompt': ..., 'layout': {{...}}}}")
        for i, entry in enumerate(entries):
            where = f"{path}: entry {i}"
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
            layout = Layout.from_dict(entry.get("layout", entry), source=where)
            try:
                layout.validate(check_fonts=False)
            except LayoutError as err:
                raise LayoutError(f"{where}: {err}") from err
            prompt = entry.get("prompt") or layout.caption or " ".join(f'"{t}"' for t in layout.texts)
            samples.append(ValidationSample(prompt=prompt, layout=layout))
    if data.validation_shards:
        from textgen.core.shards import iter_triples

        for taken, triple in enumerate(iter_triples(data.validation_shards)):
            if taken >= data.num_validation_samples:
                break
            prompt = triple.caption or " ".join(f'"{t}"' for t in triple.layout.texts)
            samples.append(ValidationSample(prompt=prompt, layout=triple.layout))
    return samples


def load_ocr_engine(name: str) -> Any | None:
    """The OCR engine for validation scores, or ``None`` (with a logged note) when it cannot load."""
    if not name or name == "none":
        return None
    try:
        from textgen.core.ocr import get_engine

        return get_engine(name, threads=1)
    except Exception as err:  # a missing optional OCR package must not stop a training run
        logger.warning(
            "validation OCR engine %r unavailable (%s): validation images are saved without OCR scores", name, err
        )
        return None


def ocr_scores(images: Sequence[Any], layouts: Sequence[Any], engine: Any) -> dict[str, Any]:
    """AnyText's Sentence Accuracy and NED over every line of every image (per-box crops).

    Args:
        images: Generated images.
        layouts: The layout each image was generated from (same order).
        engine: An OCR engine (:func:`textgen.core.ocr.get_engine`).

    Returns:
        ``{"sentence_accuracy", "ned", "lines", "reads"}``.
    """
    from textgen.core.metrics import line_scores
    from textgen.eval_read import read_boxes

    lines, reads = [], []
    for image, layout in zip(images, layouts):
        read = read_boxes(image, layout, engine)
        reads.append(read)
        lines.extend(line_scores(read, layout.texts))
    n = len(lines)
    return {
        "sentence_accuracy": sum(s.exact for s in lines) / n if n else 0.0,
        "ned": sum(s.ned for s in lines) / n if n else 0.0,
        "lines": n,
        "reads": reads,
    }


def image_grid(rows: Sequence[Sequence[Any]], cell: int):
    """Pastes rows of PIL images into one grid, each cell ``cell`` pixels square."""
    from PIL import Image

    columns = max(len(r) for r in rows)
    grid = Image.new("RGB", (columns * cell, len(rows) * cell), "white")
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            grid.paste(image.convert("RGB").resize((cell, cell)), (x * cell, y * cell))
    return grid


class ValidationMixin:
    """EMA swaps, the diffusers pipeline of the run's models, ``validate`` and ``save_final`` of the trainer."""

    def _swap_in_ema(self) -> None:
        for name, ema in self.ema.items():
            params = self.accelerator.unwrap_model(self.trainable[name]).parameters()
            ema.store(params)
            ema.copy_to(self.accelerator.unwrap_model(self.trainable[name]).parameters())

    def _swap_out_ema(self) -> None:
        for name, ema in self.ema.items():
            ema.restore(self.accelerator.unwrap_model(self.trainable[name]).parameters())

    def _sd_pipeline(self, unet=None, text_encoder=None, controlnet=None, vae=None):
        """A diffusers pipeline of the run's models: ControlNet, or plain for a glyph-input UNet without one."""
        from diffusers import StableDiffusionControlNetPipeline, StableDiffusionPipeline

        acc, m = self.accelerator, self.models
        parts = dict(
            vae=vae or m.vae,
            text_encoder=text_encoder or acc.unwrap_model(self.trainable.get("text_encoder", m.text_encoder)),
            tokenizer=m.tokenizer,
            unet=unet or acc.unwrap_model(self.trainable.get("unet", m.unet)),
            scheduler=m.scheduler,
            safety_checker=None,
            feature_extractor=None,
            image_encoder=None,
            requires_safety_checker=False,
        )
        if "controlnet" not in self.trainable:
            return StableDiffusionPipeline(**parts)
        controlnet = controlnet or acc.unwrap_model(self.trainable["controlnet"])
        return StableDiffusionControlNetPipeline(controlnet=controlnet, **parts)

    def _inference_copy(self, name: str):
        """The module ``name`` ready for inference in the frozen dtype: itself, or a cast copy if it is trained."""
        import torch

        acc, m = self.accelerator, self.models
        if name not in self.trainable:
            return getattr(m, name)
        net = acc.unwrap_model(self.trainable[name])
        if self.weight_dtype == torch.float32:
            net.eval()
            return net
        from accelerate import init_empty_weights

        with init_empty_weights():
            copy = type(net).from_config(net.config) if hasattr(type(net), "from_config") else type(net)(net.config)
        copy.load_state_dict(net.state_dict(), assign=True)  # shares storage until the cast below copies it
        return copy.to(acc.device, dtype=self.weight_dtype).eval()

    def _pipeline_config(self):
        from textgen.pipeline import PipelineConfig

        run = self.args.run
        return PipelineConfig(
            control="glyph",
            height=self.resolution,
            width=self.resolution,
            num_inference_steps=run.validation_inference_steps,
            guidance_scale=run.validation_guidance_scale,
        )

    def validate(self) -> dict[str, Any] | None:
        """Generates the validation layouts (EMA weights when enabled), saves a grid, logs OCR scores."""
        import numpy as np
        import torch

        from textgen.pipeline import PosterPipeline

        acc, run = self.accelerator, self.args.run
        acc.wait_for_everyone()
        if not acc.is_main_process:
            acc.wait_for_everyone()
            return None
        t0 = time.perf_counter()
        self._swap_in_ema()
        # Generate in the frozen models' dtype, as users run the result. Trainable fp32 weights get a lower-precision
        # copy (autocast cannot mix them: CPU group_norm refuses bf16 inputs with fp32 weights).
        names = ("unet", "text_encoder", "controlnet") if "controlnet" in self.trainable else ("unet", "text_encoder")
        nets = {name: self._inference_copy(name) for name in names}
        rows, images, layouts = [], [], []
        try:
            pipe = PosterPipeline(
                self._sd_pipeline(**nets), planner="rule", control="glyph", config=self._pipeline_config()
            )
            with torch.no_grad():
                for i, sample in enumerate(self.validation):
                    out = pipe(
                        sample.prompt,
                        layout=sample.layout,
                        num_images_per_prompt=run.num_validation_images,
                        num_inference_steps=run.validation_inference_steps,
                        guidance_scale=run.validation_guidance_scale,
                        generator=torch.Generator(device="cpu").manual_seed(run.seed + i),
                        height=self.resolution,
                        width=self.resolution,
                        progress=False,
                    )
                    rows.append([out.glyph, *out.images])
                    images.extend(out.images)
                    layouts.extend([out.layout] * len(out.images))
        finally:
            self._swap_out_ema()
            for net in self.trainable.values():
                net.train()
        folder = self.output_dir / "validation"
        folder.mkdir(parents=True, exist_ok=True)
        grid = image_grid(rows, cell=max(self.resolution, 64))
        grid_path = folder / f"step_{self.global_step:06d}.png"
        grid.save(grid_path)
        result: dict[str, Any] = {
            "step": self.global_step,
            "grid": grid_path.name,
            "prompts": [s.prompt for s in self.validation],
        }
        if self.ocr_engine is not None:
            scores = ocr_scores(images, layouts, self.ocr_engine)
            result.update(scores)
            acc.log(
                {"val/sentence_accuracy": scores["sentence_accuracy"], "val/ned": scores["ned"]}, step=self.global_step
            )
        result["seconds"] = round(time.perf_counter() - t0, 3)
        with (folder / "scores.jsonl").open("a") as f:
            f.write(json.dumps(result) + "\n")
        for tracker in acc.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_image("validation", np.asarray(grid), self.global_step, dataformats="HWC")
        scored = (
            f", sentence accuracy {result['sentence_accuracy']:.3f}, NED {result['ned']:.3f}"
            if "ned" in result
            else ""
        )
        logger.info("validation at step %d: %s%s", self.global_step, grid_path, scored)
        acc.wait_for_everyone()
        return result

    def save_final(self) -> dict[str, str]:
        """Saves ``controlnet`` (when there is one) and ``pipeline`` (when the UNet or text encoder were trained)."""
        from textgen.pipeline import PosterPipeline

        acc = self.accelerator
        acc.wait_for_everyone()
        outputs: dict[str, str] = {}
        if not acc.is_main_process:
            return outputs
        dtype = _dtype(self.args.run.save_dtype)
        self._swap_in_ema()  # training is over: the EMA weights stay in
        trained = {name: acc.unwrap_model(net) for name, net in self.trainable.items()}
        if "controlnet" in trained:
            controlnet_dir = self.output_dir / "controlnet"
            _cast(trained["controlnet"], dtype).save_pretrained(controlnet_dir, safe_serialization=True)
            outputs["controlnet"] = str(controlnet_dir)
        if self.train_unet or self.train_text or self.models.from_scratch:
            # Frozen parts were held in the mixed-precision dtype: take them again at full precision.
            fresh = load_models(self.args.model, self.args.run.seed)
            unet = trained.get("unet", fresh.unet)
            text_encoder = trained.get("text_encoder", fresh.text_encoder)
            for net in (unet, text_encoder, fresh.vae):
                _cast(net, dtype)
            sd = self._sd_pipeline(
                unet=unet, text_encoder=text_encoder, controlnet=trained.get("controlnet"), vae=fresh.vae
            )
            pipeline_dir = self.output_dir / "pipeline"
            PosterPipeline(sd, planner="rule", control="glyph", config=self._pipeline_config()).save_pretrained(
                pipeline_dir
            )
            outputs["pipeline"] = str(pipeline_dir)
        logger.info("saved %s", ", ".join(outputs.values()))
        return outputs
