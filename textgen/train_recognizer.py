"""Train the word recognizer (:mod:`textgen.recognizer`) on line crops of synthetic posters.

``textgen train-recognizer -o runs/recognizer`` draws ``textgen synth`` posters (simple, easy and poster modes at
the model's resolution: every font, colour and background the diffusion model is trained on), crops each text line
with :func:`textgen.recognizer.crop_lines` and trains the CNN + CTC reader on them. Each batch is degraded the way
a small diffusion model's output is (Gaussian blur, noise, down-and-up scaling, a few pixels of box jitter) so the
reader reads what the model paints, not only what the renderer draws. The output folder loads with
``WordRecognizer.from_pretrained`` and holds ``report.json``: word accuracy on held-out synthetic lines, clean and
degraded.

A few thousand steps on two CPU cores (minutes) give a reader good enough to be a training loss.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from textgen.core.cliargs import add_dataclass_arguments, from_namespace, option

logger = logging.getLogger(__name__)


@dataclass
class RecognizerTrainArgs:
    """Options of ``textgen train-recognizer``."""

    output_dir: str = option(
        "folder for the recognizer (recognizer.json + .safetensors) and report.json", "", flags=("-o",)
    )
    steps: int = option("optimizer steps", 4000)
    batch_size: int = option("line crops per step", 128)
    learning_rate: float = option("peak AdamW learning rate (one-cycle schedule)", 2e-3)
    train_samples: int = option("synthetic posters drawn for training (each gives 1-4 lines)", 12000)
    val_samples: int = option("held-out posters for the report", 600)
    size: int = option("poster side in pixels: the diffusion model's resolution", 128)
    modes: list[str] = option("synth modes to draw from", ["simple", "easy", "poster"])
    seed: int = option("seed of the data and the initialisation", 0)
    workers: int = option("processes drawing the posters", 1)
    threads: int | None = option("torch threads (CPU)", None)
    device: str | None = option("cpu, cuda... (default: cuda if available)", None)
    channels: list[int] = option("channels of the four convolution stages", [32, 64, 128, 192])
    hidden: int = option("width of the sequence layers", 256)
    log_every: int = option("steps between loss records", 100)

    def validate(self) -> RecognizerTrainArgs:
        from data_prep.synth import MODES

        if not self.output_dir:
            raise ValueError("--output_dir is required")
        if min(self.steps, self.batch_size, self.train_samples, self.val_samples) < 1:
            raise ValueError("--steps, --batch_size, --train_samples and --val_samples must be >= 1")
        unknown = set(self.modes) - set(MODES)
        if unknown:
            raise ValueError(f"--modes: unknown synth mode(s) {sorted(unknown)}; expected some of {MODES}")
        if len(self.channels) != 4 or min(self.channels) < 1 or self.hidden < 1:
            raise ValueError(
                f"--channels needs four positive sizes and --hidden >= 1, got {self.channels}, {self.hidden}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"--learning_rate must be > 0, got {self.learning_rate}")
        return self


# ==================================================================================================== data
def _draw(job: tuple[int, int, int, str]) -> tuple[Any, list[tuple[float, ...]], list[str]]:
    """One poster: its pixels and the pixel box and text of each line the recognizer can be taught."""
    import numpy as np

    from data_prep.synth import SynthOptions, make_sample
    from textgen.recognizer import encode_text

    seed, index, size, mode = job
    sample = make_sample(seed, index, SynthOptions(size=size, mode=mode))
    boxes, texts = [], []
    for box in sample.record.layout.boxes:
        if box.angle or encode_text(box.text) is None:
            continue  # rotated lines and characters outside the charset are not taught
        boxes.append(tuple(float(v) for v in box.to_pixels(size, size)))
        texts.append(box.text.strip())
    return np.asarray(sample.image, dtype=np.uint8), boxes, texts


def draw_lines(
    n: int, size: int, seed: int, modes: Sequence[str], workers: int = 1
) -> tuple[Any, Any, list[list[int]], list[str]]:
    """Draws ``n`` posters (modes in turn) and returns ``(images uint8 (n,3,S,S), rows (N,5), labels, texts)``."""
    import numpy as np
    import torch

    from textgen.recognizer import encode_text

    jobs = [(seed, i, size, modes[i % len(modes)]) for i in range(n)]
    if workers > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            drawn = pool.map(_draw, jobs, chunksize=64)
    else:
        drawn = [_draw(job) for job in jobs]
    images = torch.from_numpy(np.stack([d[0] for d in drawn])).permute(0, 3, 1, 2).contiguous()
    rows, labels, texts = [], [], []
    for i, (_, boxes, words) in enumerate(drawn):
        for box, text in zip(boxes, words):
            rows.append([float(i), *box])
            labels.append(encode_text(text))
            texts.append(text)
    return images, torch.tensor(rows, dtype=torch.float32), labels, texts


def degrade(images, generator, strength: float = 1.0):
    """Blur, noise and down-and-up scaling of ``(B, 3, H, W)`` images in ``[-1, 1]``, random per image."""
    import torch
    import torch.nn.functional as F

    b = images.shape[0]
    device = images.device
    out = images
    # down-and-up scaling by 2 for a third of the images (a 4x-downsampled latent grid's softness)
    pick = torch.rand(b, generator=generator, device=device) < 0.33 * strength
    if pick.any():
        small = F.interpolate(out[pick], scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
        out = out.clone()
        out[pick] = F.interpolate(small, size=out.shape[-2:], mode="bilinear", align_corners=False)
    # Gaussian blur, sigma in [0, 1.2]
    sigma = torch.rand(b, generator=generator, device=device) * 1.2 * strength
    radius = 3
    x = torch.arange(-radius, radius + 1, device=device, dtype=out.dtype)
    kernel = torch.exp(-(x[None] ** 2) / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, 7)
    c = out.shape[1]
    flat = out.reshape(1, b * c, *out.shape[-2:])
    kx = kernel.repeat_interleave(c, dim=0)[:, None, None, :]
    ky = kernel.repeat_interleave(c, dim=0)[:, None, :, None]
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kx, groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), ky, groups=b * c)
    out = flat.reshape_as(out)
    # additive noise, sigma in [0, 0.12] of the [-1, 1] range
    noise_sigma = torch.rand(b, 1, 1, 1, generator=generator, device=device) * 0.12 * strength
    return (out + noise_sigma * torch.randn(out.shape, generator=generator, device=device)).clamp(-1, 1)


def word_accuracy(model, images, rows, texts, batch: int = 512, generator=None) -> dict[str, float]:
    """Exact-match rate and mean NED of the recognizer on the given line crops (``generator``: degrade them)."""
    import torch

    from textgen.core.metrics import ned
    from textgen.recognizer import crop_lines, decode_greedy

    reads: list[str] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            index = part[:, 0].long()
            used = torch.unique(index)
            remap = torch.zeros(int(index.max()) + 1, dtype=torch.long)
            remap[used] = torch.arange(len(used))
            pixels = images[used].float() / 127.5 - 1.0
            if generator is not None:
                pixels = degrade(pixels, generator)
            local = part.clone()
            local[:, 0] = remap[index].float()
            reads.extend(decode_greedy(model(crop_lines(pixels, local))))
    exact = sum(r == t for r, t in zip(reads, texts)) / max(1, len(texts))
    mean_ned = sum(ned(r, t) for r, t in zip(reads, texts)) / max(1, len(texts))
    return {"word_accuracy": round(exact, 4), "ned": round(mean_ned, 4), "lines": len(texts)}


# ================================================================================================== train
def train(args: RecognizerTrainArgs) -> dict[str, Any]:
    """Trains and saves the recognizer; returns the report (also written to ``report.json``)."""
    import torch

    from textgen.recognizer import (
        RecognizerConfig,
        WordRecognizer,
        count_parameters,
        crop_lines,
        ctc_loss,
        pad_labels,
    )

    args.validate()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    images, rows, labels, _ = draw_lines(args.train_samples, args.size, args.seed, args.modes, args.workers)
    val_images, val_rows, _, val_texts = draw_lines(
        args.val_samples, args.size, args.seed + 7919, args.modes, args.workers
    )
    logger.info("drew %d training lines and %d held-out lines in %.0f s", len(rows), len(val_rows),
                len(val_rows) and time.perf_counter() - t0)  # fmt: skip
    images, rows = images.to(device), rows.to(device)
    targets, target_lengths = pad_labels(labels, device)
    torch.manual_seed(args.seed)
    model = WordRecognizer(RecognizerConfig(channels=tuple(args.channels), hidden=args.hidden)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.learning_rate, total_steps=args.steps)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    log = []
    t_train = time.perf_counter()
    for step in range(1, args.steps + 1):
        model.train()
        pick = torch.randint(len(rows), (args.batch_size,), generator=generator, device=device)
        batch_rows = rows[pick]
        index = batch_rows[:, 0].long()
        used, local = torch.unique(index, return_inverse=True)
        pixels = degrade(images[used].float() / 127.5 - 1.0, generator)
        jitter = (torch.rand(len(pick), 4, generator=generator, device=device) - 0.5) * 4.0
        crop_rows = torch.cat([local[:, None].float(), batch_rows[:, 1:]], dim=1)
        crops = crop_lines(pixels, crop_rows, jitter=jitter)
        if torch.rand(1, generator=generator, device=device).item() < 0.5:
            crops = -crops  # either polarity: light text on dark and dark on light
        loss = ctc_loss(model, crops, targets[pick], target_lengths[pick]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        schedule.step()
        if step % args.log_every == 0 or step == args.steps or step == 1:
            seconds = round(time.perf_counter() - t_train, 1)
            log.append({"step": step, "loss": round(loss.item(), 4), "seconds": seconds})
            logger.info("step %d loss %.4f", step, log[-1]["loss"])
    model = model.cpu().eval()
    model.save_pretrained(out)
    report = {
        "args": asdict(args),
        "parameters": count_parameters(model),
        "train_lines": len(rows),
        "train_seconds": round(time.perf_counter() - t_train, 1),
        "heldout_clean": word_accuracy(model, val_images, val_rows, val_texts),
        "heldout_degraded": word_accuracy(
            model, val_images, val_rows, val_texts, generator=torch.Generator().manual_seed(1)
        ),
        "log": log,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


# ==================================================================================================== cli
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, RecognizerTrainArgs, required=("output_dir",), title="recognizer training")


def run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    report = train(from_namespace(RecognizerTrainArgs, args))
    clean, degraded = report["heldout_clean"], report["heldout_degraded"]
    print(
        f"recognizer ({report['parameters'] / 1e6:.2f} M parameters) -> {args.output_dir}: held-out word accuracy "
        f"{clean['word_accuracy']:.3f} clean, {degraded['word_accuracy']:.3f} degraded ({clean['lines']} lines)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="train_recognizer", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    return train(from_namespace(RecognizerTrainArgs, args))


if __name__ == "__main__":
    main()
