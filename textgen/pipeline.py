"""PosterPipeline: prompt -> layout -> glyph -> ControlNet -> Stable Diffusion, composed on diffusers.

The pipeline owns no diffusion code: it plans where the words go, renders them as a glyph image, turns that
into the control image its ControlNet was trained on, and hands everything to diffusers'
``StableDiffusionControlNetPipeline`` (or, for a glyph-input UNet saved without a ControlNet, to
``StableDiffusionPipeline``, the glyph riding on the UNet's input).
What it adds on top is what a text-rendering user needs: the layout and
glyph come back with the images, and ``best_of=N`` generates N candidates, reads each with OCR, and returns them
best first with their scores.

Two control modes:

* ``"glyph"`` — a glyph ControlNet (trained by ``textgen train-controlnet``) sees the black-on-white glyph image.
* ``"canny"`` — the off-the-shelf route: the glyph image through controlnet-aux's ``CannyDetector`` into a stock
  canny ControlNet (e.g. ``lllyasviel/sd-controlnet-canny`` on Stable Diffusion 1.5).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from PIL import Image

from textgen.core.glyph import GlyphOptions, render_glyph
from textgen.core.layout import Layout
from textgen.pipeline_config import (  # noqa: F401  (part of textgen.pipeline's API)
    CONFIG_NAME,
    CONTROL_MODES,
    DEFAULT_GUIDANCE,
    DEFAULT_STEPS,
    MAX_CONTROL_SCALE,
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_STEPS,
    PRESETS,
    SHIPPED_MODEL,
    PipelineConfig,
    PosterOutput,
    Preset,
    SpeedOptions,
    _saved_without_controlnet,
    _torch_dtype,
    apply_speed_options,
    check_call_inputs,
    load_diffusers,
    resolve_model,
    rule_options,
    sampling_problem,
)

logger = logging.getLogger(__name__)


class PosterPipeline:
    """Prompt to poster with legible text.

    Args:
        sd: A diffusers ``StableDiffusionControlNetPipeline`` (or any pipeline with the same call signature), or a
            ``StableDiffusionPipeline`` whose UNet takes the glyph on its input (``StackConfig.glyph_concat``).
        planner: ``"rule"``, a path/hub id of an LLM planner, or a planner object with ``plan(...)``.
        control: ``"glyph"`` or ``"canny"``.
        config: Defaults saved with the pipeline (:class:`PipelineConfig`).
        ocr_engine: Engine used by ``best_of`` (default: :func:`textgen.core.ocr.get_engine`, loaded on first use).
    """

    def __init__(
        self,
        sd: Any,
        planner: Any = "rule",
        control: str = "glyph",
        config: PipelineConfig | None = None,
        ocr_engine: Any = None,
    ):
        if control not in CONTROL_MODES:
            raise ValueError(f"control must be one of {CONTROL_MODES}, got {control!r}")
        self.sd = sd
        self.config = config or PipelineConfig()
        self.config.control = control
        self.control = control
        self.planner_spec = planner if isinstance(planner, str) else getattr(planner, "name_or_path", "custom")
        self.config.planner = self.planner_spec
        self._planner = None if isinstance(planner, str) else planner
        self._ocr_engine = ocr_engine
        self._canny = None

    # ------------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        base: str | Path | None = None,
        controlnet: str | Path | None = None,
        *,
        planner: Any = None,
        control: str | None = None,
        torch_dtype: Any = None,
        local_files_only: bool = False,
        device: str | None = None,
        speed: SpeedOptions | None = None,
        ocr_engine: Any = None,
        **kwargs: Any,
    ) -> PosterPipeline:
        """Loads a pipeline from a preset name, a hub id, or a local folder.

        Args:
            base: A preset name (see :data:`PRESETS`), a folder written by :meth:`save_pretrained`, or a diffusers
                Stable Diffusion model (hub id or folder); ``None`` loads the model shipped with textgen (offline).
                :func:`resolve_model` says which.
            controlnet: A diffusers ControlNet (hub id or folder). Required unless ``base`` is a preset that names
                one or a saved PosterPipeline folder (which holds its own).
            planner: ``"rule"`` (default), an LLM planner path/hub id, or a planner object.
            control: ``"glyph"`` or ``"canny"``; default from the preset or saved config, else ``"glyph"``.
            torch_dtype: Load dtype (``torch.float16``, ``"fp16"``...); default: ``speed.dtype``, else fp32 (also
                for weights saved in fp16).
            local_files_only: Never touch the network.
            device: Move the models there after loading (``"cuda"``, ``"cpu"``).
            speed: Opt-in speed-ups (:class:`SpeedOptions`).
            ocr_engine: OCR engine for ``best_of`` (default: the data stage's default engine, loaded on first use).
            **kwargs: Passed to ``StableDiffusionControlNetPipeline.from_pretrained`` (e.g. ``safety_checker=None``,
                ``variant="fp16"``).

        Raises:
            ValueError: no ControlNet given for a base that needs one; unknown control mode.
            OSError: a model cannot be found (offline and not cached, or a wrong path).
        """

        import textgen.models  # noqa: F401  (registers PixelUnshuffleAutoencoder for saved tiny models)

        shipped = base is None or not str(base).strip()
        base = resolve_model(base)
        local_files_only = local_files_only or shipped
        if torch_dtype is None:  # full precision unless asked: fp16-saved weights would otherwise load mixed
            torch_dtype = speed.dtype if speed is not None else "fp32"
        dtype = _torch_dtype(torch_dtype)
        sd, config, control = load_diffusers(base, controlnet, control, dtype, local_files_only, **kwargs)
        pipe = cls(
            sd,
            planner=planner or config.planner,
            control=control or config.control,
            config=config,
            ocr_engine=ocr_engine,
        )
        if device is not None:
            pipe.to(device)
        if speed is not None:
            pipe.enable_speedups(speed)
        return pipe

    def save_pretrained(self, path: str | Path) -> None:
        """Writes the diffusers components (safetensors) and ``textgen_pipeline.json``, as from_pretrained reads."""
        path = Path(path)
        self.sd.save_pretrained(path, safe_serialization=True)
        (path / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    def to(self, device: Any) -> PosterPipeline:
        self.sd.to(device)
        return self

    @property
    def device(self):
        return self.sd.device

    def enable_speedups(self, speed: SpeedOptions) -> PosterPipeline:
        """Applies :class:`SpeedOptions`: dtype, attention kernel, ``torch.compile``, CPU offload, channels-last."""
        apply_speed_options(self.sd, speed)
        return self

    # ------------------------------------------------------------------------------------------ helpers
    @property
    def inpaints(self) -> bool:
        """Whether the diffusers pipeline is an inpainting one (``StableDiffusionControlNetInpaintPipeline``)."""
        return hasattr(self.sd, "mask_processor")

    @property
    def controlnet(self):
        """The glyph (or canny) ControlNet, or ``None`` for a glyph-input UNet that works without one."""
        return getattr(self.sd, "controlnet", None)

    @property
    def planner(self):
        if self._planner is None:
            from layout_model import load_planner

            kwargs = {}
            if self.planner_spec == "rule":
                kwargs["options"] = rule_options(self.config, min(self.default_size()))
            self._planner = load_planner(self.planner_spec, **kwargs)
        return self._planner

    def small_boxes(self, layout: Layout) -> list[tuple[int, str, float]]:
        """Boxes lower than the model's declared legible height: ``(index, text, height at the native size)``."""
        if not self.config.min_text_height:
            return []
        native = min(self.default_size())
        short = min(layout.width, layout.height)
        found = []
        for i, box in enumerate(layout.boxes):
            h = (box.box[3] - box.box[1]) * layout.height * native / short
            if h < self.config.min_text_height - 0.5:
                found.append((i, box.text, h))
        return found

    @property
    def ocr_engine(self):
        if self._ocr_engine is None:
            from textgen.core.ocr import get_engine

            self._ocr_engine = get_engine()
        return self._ocr_engine

    @property
    def vae_scale_factor(self) -> int:
        return int(self.sd.vae_scale_factor)

    def default_size(self) -> tuple[int, int]:
        if self.config.height and self.config.width:
            return self.config.width, self.config.height
        side = int(self.sd.unet.config.sample_size) * self.vae_scale_factor
        return side, side

    def control_image(self, glyph: Image.Image) -> Image.Image:
        """The image the ControlNet sees: the glyph itself, or its canny edges."""
        if self.control == "glyph":
            return glyph
        if self._canny is None:
            try:
                from controlnet_aux import CannyDetector
            except ImportError as err:
                raise ImportError("control='canny' needs controlnet-aux: pip install 'textgen[control]'") from err
            self._canny = CannyDetector()
        return self._canny(glyph, low_threshold=100, high_threshold=200, output_type="pil").convert("RGB")

    def plan(
        self, prompt: str, texts: Sequence[str] | None = None, width: int = 512, height: int = 512, seed: int = 0
    ):
        """Plans a layout for ``prompt`` with the pipeline's planner."""
        return self.planner.plan(
            prompt, texts=list(texts) if texts is not None else None, width=width, height=height, seed=seed
        )

    def score(self, images: Sequence[Image.Image], layout: Layout) -> tuple[list[float], list[list[str]]]:
        """OCR score of each image against the layout's texts: mean NED over boxes (1 = all read exactly)."""
        from textgen.core.metrics import ocr_score
        from textgen.eval_read import read_boxes

        texts = [read_boxes(image, layout, self.ocr_engine) for image in images]
        return [ocr_score(read, layout.texts) for read in texts], texts

    # --------------------------------------------------------------------------------------------- call
    def check_inputs(
        self, prompt, layout, texts, height, width, num_images_per_prompt, best_of, num_inference_steps=None,
        guidance_scale=None, controlnet_conditioning_scale=None,
    ) -> None:  # fmt: skip
        """Raises ``ValueError`` naming the first bad input (:func:`textgen.pipeline_config.check_call_inputs`)."""
        check_call_inputs(
            prompt, layout, texts, height, width, self.vae_scale_factor, num_images_per_prompt, best_of,
            num_inference_steps, guidance_scale, controlnet_conditioning_scale,
        )  # fmt: skip

    def unet_inputs(self):
        """What the UNet takes beside the latent (:class:`textgen.models.UNetInputs`): glyph, masked image, mask."""
        from textgen.models import UNetInputs, unet_inputs

        unet = getattr(self.sd.unet, "unet", self.sd.unet)  # the real UNet while a glyph is being fed
        # diffusers' inpainting pipeline feeds an inpainting UNet's mask channels itself
        return (
            UNetInputs()
            if self.inpaints
            else unet_inputs(unet, self.sd.vae.config.latent_channels, self.vae_scale_factor)
        )

    @property
    def edits_natively(self) -> bool:
        """Whether the model learnt to edit: its UNet takes the masked image and mask (``StackConfig.inpaint``)."""
        return self.unet_inputs().edits

    @contextmanager
    def _glyph_input(
        self, glyph: Image.Image, scale: float, image: Image.Image | None = None, mask: Image.Image | None = None
    ) -> Iterator[None]:
        """For a glyph-input UNet (``StackConfig.glyph_concat``): feeds it the glyph during the diffusers call.

        The glyph's ink mask, times the ControlNet conditioning ``scale`` (0 blanks the whole glyph condition),
        goes onto the latent grid; a standard UNet is left alone. A UNet that edits (``StackConfig.inpaint``) also
        gets ``image`` with ``mask`` (white = repaint) blanked out, and the mask; without them everything is masked,
        which is generation.
        """
        from textgen.models import GlyphInputUNet, unet_condition

        unet = self.sd.unet
        inputs = self.unet_inputs()
        if not inputs.glyph:
            yield
            return
        grid = unet_condition(inputs, self.sd.vae, glyph, scale, image=image, mask=mask)
        self.sd.__dict__["unet"] = GlyphInputUNet(unet, grid)  # plain attribute swap: no pipeline re-registration
        try:
            yield
        finally:
            self.sd.__dict__["unet"] = unet

    def __call__(
        self,
        prompt: str,
        layout: Layout | None = None,
        texts: Sequence[str] | None = None,
        *,
        negative_prompt: str | None = None,
        num_images_per_prompt: int = 1,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        controlnet_conditioning_scale: float = 1.0,
        generator: Any = None,
        seed: int | None = None,
        height: int | None = None,
        width: int | None = None,
        best_of: int = 1,
        repair: int = 0,
        plan_seed: int = 0,
        progress: bool = True,
        **sd_kwargs: Any,
    ) -> PosterOutput:
        """Generates posters for ``prompt``.

        Args:
            prompt: What to paint; quoted spans (``"OPEN"``) are the words to render unless ``texts``/``layout``
                say otherwise.
            layout: Use this layout instead of planning one (resized to the output size).
            texts: Words to paint, overriding the quotes in the prompt.
            negative_prompt: Passed to diffusers.
            num_images_per_prompt: Images to return (without ``best_of``).
            num_inference_steps: Denoising steps (default from the saved config).
            guidance_scale: Classifier-free guidance (default from the saved config).
            controlnet_conditioning_scale: Strength of the glyph condition (the ControlNet's residuals and, for a
                glyph-input UNet, its glyph channels); 0 blanks the glyph (ablation).
            generator: A ``torch.Generator`` (or list) for reproducible results.
            seed: Shorthand for ``generator=torch.Generator().manual_seed(seed)``.
            height: Output height (default: the model's size).
            width: Output width.
            best_of: Generate this many candidates (times ``num_images_per_prompt``), OCR each against the layout's
                texts and return all of them best first with ``scores``.
            repair: After painting (and ranking), OCR reads every box of the first image; boxes that do not read
                back are repainted in place, up to this many rounds (:func:`textgen.edit.repair`).
            plan_seed: Seed of the layout planner.
            progress: Show diffusers' progress bar.
            **sd_kwargs: Passed to ``StableDiffusionControlNetPipeline.__call__``.

        Returns:
            A :class:`PosterOutput`.
        """
        import torch

        default_w, default_h = self.default_size()
        width, height = width or default_w, height or default_h
        steps = num_inference_steps or self.config.num_inference_steps
        guidance = self.config.guidance_scale if guidance_scale is None else guidance_scale

        # 1. Check inputs
        self.check_inputs(
            prompt, layout, texts, height, width, num_images_per_prompt, best_of, num_inference_steps, guidance,
            controlnet_conditioning_scale,
        )  # fmt: skip

        # 2. Plan the layout (or take the given one)
        if layout is None:
            layout = self.plan(prompt, texts=texts, width=width, height=height, seed=plan_seed)
        layout = layout.resized(width, height)
        if layout.caption is None:
            layout = Layout(width=width, height=height, boxes=layout.boxes, caption=prompt)
        for i, text, h in self.small_boxes(layout):
            logger.warning(
                "box %d (%r) is %.0f px high at the model's %d px: below the %.0f px it paints legibly; expect "
                "it to come out unreadable (fewer or shorter texts, or a larger box)",
                i, text, h, min(self.default_size()), self.config.min_text_height,
            )  # fmt: skip

        # 3. Render the glyph
        glyph = render_glyph(layout, options=GlyphOptions(**self.config.glyph_options))

        # 4. Build the control image
        control_image = self.control_image(glyph)

        # 5. Run the ControlNet + Stable Diffusion pipeline
        if generator is None and seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(seed)
        self.sd.set_progress_bar_config(disable=not progress)
        control_kwargs = {}
        if self.controlnet is not None:
            control_kwargs = {
                "image": control_image,
                "controlnet_conditioning_scale": float(controlnet_conditioning_scale),
            }
        elif not self.unet_inputs().glyph:
            raise ValueError("this pipeline has neither a ControlNet nor a glyph-input UNet: nothing sees the glyph")
        if self.inpaints:  # an inpainting base paints a whole new poster as a fully masked blank canvas
            control_kwargs.update(
                image=Image.new("RGB", (width, height), "white"), mask_image=Image.new("L", (width, height), 255),
                control_image=control_image, strength=1.0,
            )  # fmt: skip
        with self._glyph_input(glyph, controlnet_conditioning_scale):
            result = self.sd(
                prompt=prompt,
                negative_prompt=negative_prompt,
                num_images_per_prompt=num_images_per_prompt * best_of,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=generator,
                height=height,
                width=width,
                output_type="pil",
                **control_kwargs,
                **sd_kwargs,
            )
        images = list(result.images)

        # 6. OCR-verified best-of-N: rank candidates by how well their text reads
        scores = ocr_texts = None
        if best_of > 1 and layout.boxes:
            scores, ocr_texts = self.score(images, layout)
            from textgen.core.metrics import best_first

            order = best_first(scores)  # ties keep generation order
            images = [images[i] for i in order]
            scores = [scores[i] for i in order]
            ocr_texts = [ocr_texts[i] for i in order]

        evaluations = steps * (2 if guidance > 1 else 1) * len(images)

        # 7. Repair the words that came out wrong, in place
        if repair and layout.boxes:
            from textgen.edit import repair as repair_boxes

            fixed = repair_boxes(self, images[0], layout, self.ocr_engine, rounds=repair, prompt=prompt,
                                 seed=seed or 0, num_inference_steps=steps, guidance_scale=guidance)  # fmt: skip
            images[0], evaluations = fixed.image, evaluations + fixed.evaluations
            scores = [sum(fixed.scores) / len(fixed.scores), *(scores or [None] * len(images))[1:]]
            ocr_texts = [fixed.reads, *(ocr_texts or [None] * len(images))[1:]]

        # 8. Return images with the layout and glyph used
        return PosterOutput(
            images=images, layout=layout, glyph=glyph, control_image=control_image, scores=scores,
            ocr_texts=ocr_texts, unet_evaluations=evaluations,
        )  # fmt: skip

    def edit(
        self,
        image: Image.Image,
        layout: Layout,
        prompt: str | None = None,
        mask: Image.Image | None = None,
        best_of: int = 1,
        seed: int | None = 0,
        **kwargs: Any,
    ) -> PosterOutput:
        """Repaints the boxes of ``layout`` in ``image`` with their new texts; every other pixel stays as it was.

        In a window around each box, the model repaints the masked region itself when it learnt to edit, else by
        blended latent diffusion (:func:`textgen.edit.edit_image`; ``method``, ``margin``, ``num_inference_steps``,
        ``guidance_scale`` pass through); with ``best_of > 1`` that many seeds are tried
        and returned best first by OCR. Returns the same :class:`PosterOutput` as a call, with per-box OCR reads.
        """
        from textgen.edit import edit_image

        if best_of < 1:
            raise ValueError(f"best_of must be >= 1, got {best_of}")
        results = [
            edit_image(
                self, image, layout, prompt, mask, seed=(seed or 0) + 7919 * k, ocr_engine=self.ocr_engine, **kwargs
            )  # fmt: skip
            for k in range(best_of)
        ]
        from textgen.core.metrics import best_first, ocr_score

        results = [results[i] for i in best_first([ocr_score(r.reads, r.layout.texts) for r in results])]
        first = results[0]
        glyph = render_glyph(first.layout, options=GlyphOptions(**self.config.glyph_options))
        return PosterOutput(
            images=[r.image for r in results], layout=first.layout, glyph=glyph, control_image=first.mask,
            scores=[ocr_score(r.reads, r.layout.texts) for r in results], ocr_texts=[r.reads for r in results],
            unet_evaluations=sum(r.evaluations for r in results),
        )  # fmt: skip
