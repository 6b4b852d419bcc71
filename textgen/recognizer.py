"""A small differentiable word recognizer (CNN + CTC) that reads text lines at textgen-tiny's resolution.

Two jobs: a **text-perceptual training loss** (AnyText's OCR loss, made cheap because textgen-tiny predicts the
clean image directly: crop each text box from the predicted image, read it, CTC against the box's text) and a
**fast best-of-N scorer** (reads a candidate's boxes in a millisecond where the OCR engine takes ~0.1 s).

The network takes a grey crop of one text line, stretched to ``32 x 128`` and normalised per crop (so light text on
dark and dark text on light read alike), and emits one distribution over :data:`CHARSET` + blank per 4-pixel
column (32 steps). It is trained by ``textgen train-recognizer`` on line crops of ``textgen synth`` posters,
degraded (blur, noise, down-and-up scaling) to look like a small diffusion model's output. Weights are
safetensors beside a ``recognizer.json`` config; nothing is downloaded.

Crops come from :func:`crop_lines`, the same differentiable cropper (``grid_sample``) in training, in the
diffusion loss and at scoring time, so the recognizer always sees crops made the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CHARSET = "".join(chr(c) for c in range(32, 127))  # printable ASCII; index 0 is CTC's blank, so char i -> i + 1
CROP_HEIGHT, CROP_WIDTH = 32, 128
CONFIG_NAME = "recognizer.json"
WEIGHTS_NAME = "recognizer.safetensors"
MAX_LABEL = 24  # longest text a crop can carry (32 CTC steps leave room for repeated letters)


def encode_text(text: str, max_length: int = MAX_LABEL) -> list[int] | None:
    """CTC labels of ``text`` (1-based :data:`CHARSET` indices), or ``None`` when it cannot be a target.

    ``None`` for text with characters outside :data:`CHARSET` (CJK, accents), empty text, or text longer than
    ``max_length``: such boxes are left out of the loss rather than taught wrongly.
    """
    stripped = text.strip()
    if not stripped or len(stripped) > max_length or any(c not in CHARSET for c in stripped):
        return None
    return [CHARSET.index(c) + 1 for c in stripped]


def decode_greedy(log_probs: torch.Tensor) -> list[str]:
    """Best-path decoding of ``(T, N, C)`` log-probabilities: collapse repeats, drop blanks."""
    best = log_probs.argmax(dim=-1).transpose(0, 1).tolist()  # (N, T)
    out = []
    for row in best:
        chars, previous = [], 0
        for index in row:
            if index != previous and index != 0:
                chars.append(CHARSET[index - 1])
            previous = index
        out.append("".join(chars))
    return out


def crop_lines(
    images: torch.Tensor, boxes: torch.Tensor, pad: float = 0.15, jitter: torch.Tensor | None = None
) -> torch.Tensor:
    """Crops axis-aligned boxes out of images as ``(N, 1, 32, 128)`` grey, per-crop normalised (differentiable).

    Args:
        images: ``(B, 3, H, W)`` in ``[-1, 1]`` (or ``[0, 1]``: the per-crop normalisation removes the scale).
        boxes: ``(N, 5)`` rows ``(image index, x0, y0, x1, y1)`` in pixels.
        pad: Margin added around each box, as a fraction of its height (strokes' anti-aliasing, small misfits).
        jitter: Optional ``(N, 4)`` pixel offsets added to the box edges (training augmentation).

    Returns:
        The crops, each stretched to 32 x 128 whatever its aspect ratio.
    """
    b, _, h, w = images.shape
    grey = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]).unsqueeze(1)
    index = boxes[:, 0].long()
    x0, y0, x1, y1 = (boxes[:, i].float() for i in range(1, 5))
    if jitter is not None:
        x0, y0, x1, y1 = x0 + jitter[:, 0], y0 + jitter[:, 1], x1 + jitter[:, 2], y1 + jitter[:, 3]
    margin = pad * (y1 - y0).clamp(min=1.0)
    x0, x1, y0, y1 = x0 - margin, x1 + margin, y0 - margin, y1 + margin
    # affine_grid maps output [-1, 1] to input coordinates in [-1, 1] (align_corners=False: pixel edges)
    theta = torch.zeros(len(boxes), 2, 3, device=images.device, dtype=grey.dtype)
    theta[:, 0, 0] = (x1 - x0) / w
    theta[:, 0, 2] = (x0 + x1) / w - 1.0
    theta[:, 1, 1] = (y1 - y0) / h
    theta[:, 1, 2] = (y0 + y1) / h - 1.0
    grid = F.affine_grid(theta, [len(boxes), 1, CROP_HEIGHT, CROP_WIDTH], align_corners=False)
    crops = F.grid_sample(grey[index], grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = crops.mean(dim=(1, 2, 3), keepdim=True)
    std = crops.std(dim=(1, 2, 3), keepdim=True)
    return (crops - mean) / (std + 0.05)


@dataclass(frozen=True)
class RecognizerConfig:
    """Sizes of the recognizer.

    Args:
        channels: Channels of the four convolution stages.
        hidden: Width of the sequence layers.
    """

    channels: tuple[int, ...] = (32, 64, 128, 192)
    hidden: int = 256


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class WordRecognizer(nn.Module):
    """CNN + 1-D convolutional sequence head with CTC output over :data:`CHARSET` (~1 M parameters).

    Args:
        config: :class:`RecognizerConfig`.
    """

    def __init__(self, config: RecognizerConfig | None = None):
        super().__init__()
        self.config = config or RecognizerConfig()
        c1, c2, c3, c4 = self.config.channels
        self.features = nn.Sequential(
            _conv(1, c1),
            nn.MaxPool2d(2),  # 16 x 64
            _conv(c1, c2),
            nn.MaxPool2d(2),  # 8 x 32
            _conv(c2, c3),
            _conv(c3, c3),
            nn.MaxPool2d((2, 1)),  # 4 x 32
            _conv(c3, c4),
            nn.MaxPool2d((2, 1)),  # 2 x 32
        )
        hidden = self.config.hidden
        self.sequence = nn.Sequential(
            nn.Conv1d(c4 * 2, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, len(CHARSET) + 1, 1),
        )

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 32, 128)`` crops -> ``(T=32, N, C)`` log-probabilities (CTC's layout)."""
        x = self.features(crops)
        n, c, h, w = x.shape
        logits = self.sequence(x.reshape(n, c * h, w))  # (N, C, T)
        return logits.permute(2, 0, 1).log_softmax(dim=-1)

    # ------------------------------------------------------------------------------------------- io
    def save_pretrained(self, folder: str | Path) -> None:
        """Writes ``recognizer.json`` and ``recognizer.safetensors`` (fp32)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {**asdict(self.config), "charset": CHARSET, "crop": [CROP_HEIGHT, CROP_WIDTH]}
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        state = {k: v.detach().float().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> WordRecognizer:
        """Loads a folder written by :meth:`save_pretrained` (in eval mode).

        Raises:
            FileNotFoundError: the folder lacks the config or the weights.
            ValueError: the config was written for another character set or crop size.
        """
        from safetensors.torch import load_file

        folder = Path(folder)
        config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        for path in (config_path, weights):
            if not path.is_file():
                raise FileNotFoundError(f"{folder}: no {path.name} (not a textgen recognizer folder)")
        data = json.loads(config_path.read_text())
        if data.get("charset") != CHARSET or list(data.get("crop", [])) != [CROP_HEIGHT, CROP_WIDTH]:
            raise ValueError(f"{config_path}: made for another character set or crop size than this textgen's")
        model = cls(RecognizerConfig(channels=tuple(data["channels"]), hidden=int(data["hidden"])))
        model.load_state_dict(load_file(str(weights)))
        return model.eval()


def pad_labels(labels: Sequence[Sequence[int]], device: Any = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(targets (N, S), lengths (N,))``: label lists padded with zeros, as :func:`ctc_loss` takes them."""
    longest = max((len(row) for row in labels), default=1)
    targets = torch.zeros(len(labels), max(1, longest), dtype=torch.long)
    for i, row in enumerate(labels):
        targets[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    lengths = torch.tensor([len(row) for row in labels], dtype=torch.long)
    return targets.to(device), lengths.to(device)


def ctc_loss(
    recognizer: WordRecognizer, crops: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor
) -> torch.Tensor:
    """Per-crop CTC loss against padded ``targets`` ``(N, S)``, divided by the label length (per character)."""
    log_probs = recognizer(crops)
    input_lengths = torch.full((len(crops),), log_probs.shape[0], dtype=torch.long, device=crops.device)
    loss = F.ctc_loss(
        log_probs.float(), targets, input_lengths, target_lengths, blank=0, reduction="none", zero_infinity=True
    )
    return loss / target_lengths.clamp(min=1)


class RecognizerScorer:
    """Scores images against their layouts with the recognizer: a cheap stand-in for OCR in best-of-N.

    ``scorer(images, layout) -> (scores, reads)`` with the same meaning as
    :meth:`textgen.pipeline.PosterPipeline.score`: per image the mean NED over the layout's boxes, and the texts read.

    Args:
        recognizer: A :class:`WordRecognizer` or a folder to load one from.
        device: Where to run it.
    """

    def __init__(self, recognizer: WordRecognizer | str | Path, device: str = "cpu"):
        model = recognizer if isinstance(recognizer, WordRecognizer) else WordRecognizer.from_pretrained(recognizer)
        self.model = model.to(device).eval()
        self.device = device

    @torch.no_grad()
    def read(self, images: Sequence[Any], layout: Any) -> list[list[str]]:
        """Texts read in each box of each image (PIL images of the layout's size)."""
        import numpy as np

        if not images or not layout.boxes:
            return [[] for _ in images]
        batch = torch.stack(
            [torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 127.5 - 1.0) for im in images]
        ).permute(0, 3, 1, 2)
        rows = []
        for i in range(len(images)):
            for box in layout.boxes:
                x0, y0, x1, y1 = box.to_pixels(batch.shape[-1], batch.shape[-2])
                rows.append([i, x0, y0, x1, y1])
        crops = crop_lines(batch.to(self.device), torch.tensor(rows, dtype=torch.float32, device=self.device))
        texts = decode_greedy(self.model(crops))
        k = len(layout.boxes)
        return [texts[i * k : (i + 1) * k] for i in range(len(images))]

    def __call__(self, images: Sequence[Any], layout: Any) -> tuple[list[float], list[list[str]]]:
        from textgen.core.metrics import ocr_score

        reads = self.read(images, layout)
        return [ocr_score(read, layout.texts) for read in reads], reads


def low_noise_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Per-sample weights of the text-perceptual loss: the signal fraction ``alpha_bar(t) ** power``.

    At high noise the predicted clean image is a blur that no reader should be asked to read; near t = 0 it
    should read exactly.
    """
    return alphas_cumprod.to(timesteps.device)[timesteps].float() ** power


def box_rows(boxes: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattens a batch's padded boxes into crop rows.

    Args:
        boxes: ``(B, K, 4)`` pixel boxes.
        lengths: ``(B, K)`` label lengths (0 = no usable box).

    Returns:
        ``(rows, keep)``: ``(N, 5)`` rows for :func:`crop_lines` and the ``(N, 2)`` ``(sample, box)`` indices kept.
    """
    keep = (lengths > 0).nonzero(as_tuple=False)
    rows = torch.cat([keep[:, :1].float(), boxes[keep[:, 0], keep[:, 1]].float()], dim=1)
    return rows, keep


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
