"""The arms of the legibility study: today's recipe and each named change to it (used by ``recipes/study.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASE_STACK = ROOT / "recipes" / "tiny_stack.json"  # the shipped stack (no ControlNet)
# The study's base is the recipe as it stood before the study: the same stack with its glyph ControlNet.
BASE_STACK_OVERRIDES: dict[str, Any] = {"controlnet": True}
# Today's recipe (recipes/train_tiny.sh), from scratch.
BASE_TRAIN: dict[str, Any] = {
    "learning_rate": 1e-3,
    "lr_scheduler": "constant_with_warmup",
    "lr_warmup_steps": 100,
    "max_grad_norm": 1,
    "ema_decay": 0.999,
    "caption_dropout": 0.1,
    "text_loss_weight": 3,
    "timestep_sampling": "uniform",
}
WIDE = {"unet_channels": [64, 128, 256], "layers_per_block": 2, "attention_head_dim": 32}
SEEDS = {"simple": 1000, "easy": 2000, "val": 777777, "heldout": 31337}


@dataclass(frozen=True)
class Arm:
    """One arm of the study.

    Args:
        description: What it changes, in words.
        stack: ``StackConfig`` fields overriding ``recipes/tiny_stack.json``.
        train: Trainer flags overriding :data:`BASE_TRAIN` (``None`` removes a flag).
        data: ``simple`` (today's set), ``easy`` (large bold upper-case words) or ``curriculum`` (easy for the
            first half of the steps, then simple).
        glyph: ``render`` (the glyph drawn from each layout) or ``mask`` (the stored ink, aligned to the pixel).
        sampler: ``(steps, guidance)`` of the evaluation.
        weights_of: Evaluate this other arm's weights (no training of its own).
        extra_samplers: More ``(steps, guidance)`` to evaluate the same weights with on the planned prompts
            (reported as ``ARM@STEPSxGUIDANCE``).
    """

    description: str
    stack: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    data: str = "simple"
    glyph: str = "render"
    sampler: tuple[int, float] = (10, 1.0)
    weights_of: str | None = None
    extra_samplers: tuple[tuple[int, float], ...] = ()


TRIAL = dict(stack={**WIDE, "controlnet": False}, train={"text_loss_weight": 0}, data="easy", glyph="mask")
ARMS: dict[str, Arm] = {
    "base": Arm("today's recipe: (48,96,192)x1 UNet + glyph input + ControlNet, simple set, rendered glyph, "
                "text weight 3, uniform t, 10 steps CFG 1", extra_samplers=((30, 2.0),)),
    "trial": Arm("FINDINGS' trial: (64,128,256)x2 UNet, glyph input, no ControlNet, easy set, glyph = the ink "
                 "drawn, plain loss, 30 steps CFG 2", sampler=(30, 2.0), **TRIAL),
    "trial_lr": Arm("the trial at half the learning rate (5e-4)", sampler=(30, 2.0), stack=TRIAL["stack"],
                    train={**TRIAL["train"], "learning_rate": 5e-4}, data="easy", glyph="mask"),
    "wide": Arm("base with the trial's UNet, (64,128,256) x 2 layers per block", stack=WIDE),
    "no_controlnet": Arm("base without the ControlNet (glyph input alone)", stack={"controlnet": False}),
    "easy": Arm("base on the easy set (1-3 bold upper-case words filling the width, plain backgrounds)",
                data="easy"),
    "aligned": Arm("base with the stored ink as the glyph (on the painted strokes, not 3-4 px inside)",
                   glyph="mask", extra_samplers=((30, 2.0),)),
    "no_text_weight": Arm("base with a plain MSE (no extra weight on the text cells)",
                          train={"text_loss_weight": 0}),
    "sampler": Arm("base's weights sampled with 30 DDIM steps, CFG 2", sampler=(30, 2.0), weights_of="base"),
    "mid_t": Arm("base with logit-normal timesteps (mid noise trained most)",
                 train={"timestep_sampling": "logit_normal"}),
    "curriculum": Arm("base trained on the easy set for the first half of the steps, then the simple set",
                      data="curriculum"),
    "ocr_loss": Arm("base + the text-perceptual loss (recognizer CTC on the predicted clean image, weight 0.05)",
                    train={"ocr_loss_weight": 0.05}),
    # once the glyph sits on the strokes (the change that matters most), each other change on top of it:
    # "anc" = aligned, no ControlNet (the cheaper of the two aligned models)
    "anc_easy": Arm("aligned_no_controlnet on the easy set", stack={"controlnet": False}, glyph="mask", data="easy"),
    "anc_no_text_weight": Arm("aligned_no_controlnet with a plain MSE", stack={"controlnet": False}, glyph="mask",
                              train={"text_loss_weight": 0}),
    "anc_mid_t": Arm("aligned_no_controlnet with logit-normal timesteps", stack={"controlnet": False}, glyph="mask",
                     train={"timestep_sampling": "logit_normal"}),
    "anc_ocr_loss": Arm("aligned_no_controlnet + the text-perceptual loss (weight 0.05)",
                        stack={"controlnet": False}, glyph="mask", train={"ocr_loss_weight": 0.05}),
    "anc_curriculum": Arm("aligned_no_controlnet, easy set for the first half, then the simple set",
                          stack={"controlnet": False}, glyph="mask", data="curriculum"),
    "anc_wide": Arm("aligned_no_controlnet with the (64,128,256)x2 UNet", stack={**WIDE, "controlnet": False},
                    glyph="mask"),
    # combinations where the single changes interact
    "anc_mid_t_ocr_loss": Arm("aligned_no_controlnet with logit-normal timesteps and the text-perceptual loss",
                              stack={"controlnet": False}, glyph="mask",
                              train={"timestep_sampling": "logit_normal", "ocr_loss_weight": 0.05}),
    "anc_mid_t_edit": Arm("anc_mid_t whose UNet also takes the masked image and mask (StackConfig.inpaint): half "
                          "the samples masked whole (generation), half some text boxes (editing)",
                          stack={"controlnet": False, "inpaint": True}, glyph="mask",
                          train={"timestep_sampling": "logit_normal", "whole_mask_share": 0.5}),
    "aligned_no_controlnet": Arm("aligned + no ControlNet", stack={"controlnet": False}, glyph="mask",
                                 extra_samplers=((30, 2.0),)),
    "aligned_curriculum": Arm("aligned + curriculum", glyph="mask", data="curriculum"),
    "trial_simple": Arm("the trial's model and loss on today's simple set (aligned glyph), 30 steps CFG 2",
                        stack=TRIAL["stack"], train=TRIAL["train"], glyph="mask", sampler=(30, 2.0)),
    "trial_curriculum": Arm("the trial's model, easy then simple set, aligned glyph, 30 steps CFG 2",
                            stack=TRIAL["stack"], train=TRIAL["train"], glyph="mask", data="curriculum",
                            sampler=(30, 2.0)),
    "trial_curriculum_ocr": Arm("trial_curriculum + the text-perceptual loss (weight 0.05)",
                                stack=TRIAL["stack"], train={**TRIAL["train"], "ocr_loss_weight": 0.05},
                                glyph="mask", data="curriculum", sampler=(30, 2.0)),
}  # fmt: skip
