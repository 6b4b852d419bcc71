"""textgen.recognizer and textgen.train_recognizer: the CTC word reader, its cropper, its trainer (CPU, offline)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from textgen.core.glyph import render_glyph
from textgen.core.layout import Layout, TextBox
from textgen.recognizer import (
    CHARSET,
    MAX_LABEL,
    RecognizerConfig,
    RecognizerScorer,
    WordRecognizer,
    box_rows,
    crop_lines,
    ctc_loss,
    decode_greedy,
    encode_text,
    low_noise_weights,
    pad_labels,
)

SMALL = RecognizerConfig(channels=(8, 16, 32, 32), hidden=48)


def test_labels_round_trip_and_unusable_texts_are_refused():
    labels = encode_text(" OPEN 24/7 ")
    assert labels == [CHARSET.index(c) + 1 for c in "OPEN 24/7"]
    assert min(labels) >= 1  # 0 is CTC's blank
    for bad in ("", "   ", "开业", "café", "x" * (MAX_LABEL + 1)):
        assert encode_text(bad) is None
    # best-path decoding collapses repeats and drops blanks: "OO" needs a blank between the two O's
    o, p = CHARSET.index("O") + 1, CHARSET.index("P") + 1
    steps = [o, o, 0, o, p, p, 0]
    log_probs = torch.full((len(steps), 1, len(CHARSET) + 1), -10.0)
    for t, k in enumerate(steps):
        log_probs[t, 0, k] = 0.0
    assert decode_greedy(log_probs) == ["OOP"]


def test_pad_labels_pads_with_blanks():
    targets, lengths = pad_labels([[5, 6, 7], [9]])
    assert targets.tolist() == [[5, 6, 7], [9, 0, 0]] and lengths.tolist() == [3, 1]


def test_crop_lines_takes_the_box_normalised_and_passes_gradients():
    image = torch.full((1, 3, 64, 64), -1.0)
    image[:, :, 20:30, 10:50] = 1.0  # a white bar on black
    image.requires_grad_(True)
    crops = crop_lines(image, torch.tensor([[0.0, 12, 22, 48, 28]]), pad=0.0)
    assert crops.shape == (1, 1, 32, 128)
    # a box inside the bar sees one value: after per-crop normalisation it is all zeros
    assert crops.abs().max() < 1e-3
    # a bigger box sees the bar and the background: normalised to mean 0, std ~1
    wide = crop_lines(image, torch.tensor([[0.0, 5, 10, 55, 40]]), pad=0.0)
    assert abs(wide.mean().item()) < 1e-4 and wide.std().item() == pytest.approx(1.0, abs=0.1)
    wide.square().sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    # polarity: a dark-on-light crop is the negative of the light-on-dark one
    flipped = crop_lines(-image.detach(), torch.tensor([[0.0, 5, 10, 55, 40]]), pad=0.0)
    assert torch.allclose(flipped, -wide.detach(), atol=1e-4)


def test_box_rows_keeps_only_readable_boxes():
    boxes = torch.tensor([[[1.0, 2, 3, 4], [5, 6, 7, 8]], [[9.0, 10, 11, 12], [0, 0, 0, 0]]])
    lengths = torch.tensor([[3, 0], [2, 0]])
    rows, keep = box_rows(boxes, lengths)
    assert keep.tolist() == [[0, 0], [1, 0]]
    assert rows.tolist() == [[0.0, 1, 2, 3, 4], [1.0, 9, 10, 11, 12]]


def test_low_noise_weights_favour_clean_timesteps():
    alphas = torch.linspace(0.999, 0.001, 1000)
    w = low_noise_weights(alphas, torch.tensor([0, 500, 999]))
    assert w[0] > w[1] > w[2] > 0


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = WordRecognizer(SMALL).eval()
    model.save_pretrained(tmp_path / "rec")
    loaded = WordRecognizer.from_pretrained(tmp_path / "rec")
    x = torch.randn(2, 1, 32, 128)
    assert torch.allclose(model(x), loaded(x), atol=1e-6)
    assert loaded.config == SMALL and not loaded.training
    config = json.loads((tmp_path / "rec" / "recognizer.json").read_text())
    config["charset"] = "abc"
    (tmp_path / "rec" / "recognizer.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="another character set"):
        WordRecognizer.from_pretrained(tmp_path / "rec")
    with pytest.raises(FileNotFoundError, match="not a textgen recognizer"):
        WordRecognizer.from_pretrained(tmp_path)


def _word_images(words, size=64):
    images, layouts = [], []
    for word in words:
        layout = Layout(size, size, (TextBox(word, (0.05, 0.3, 0.95, 0.7), font="noto-sans-bold"),))
        images.append(render_glyph(layout))
        layouts.append(layout)
    return images, layouts


def test_ctc_overfits_a_few_words_and_the_scorer_reads_them():
    """Learning happens: a small reader memorises four rendered words within a few hundred CPU steps."""
    torch.manual_seed(0)
    words = ["OPEN", "SALE", "CAFE", "HOT"]
    images, layouts = _word_images(words)
    batch = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1) for im in images])
    batch = batch.permute(0, 3, 1, 2)
    rows = torch.tensor([[i, *layout.boxes[0].to_pixels(64, 64)] for i, layout in enumerate(layouts)]).float()
    crops = crop_lines(batch, rows)
    targets, lengths = pad_labels([encode_text(w) for w in words])
    model = WordRecognizer(SMALL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = ctc_loss(model, crops, targets, lengths).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.2 * np.mean(losses[:10])
    model.eval()
    assert decode_greedy(model(crops)) == words
    # the scorer crops the layout's boxes itself and scores like PosterPipeline.score (mean NED)
    scorer = RecognizerScorer(model)
    scores, reads = scorer(images[:1] + [Image.new("RGB", (64, 64), "white")], layouts[0])
    assert reads[0] == ["OPEN"] and scores[0] == 1.0
    assert scores[1] < 1.0


def test_train_recognizer_command_writes_a_loadable_model_and_report(tmp_path):
    from textgen.train_recognizer import main

    report = main(
        ["-o", str(tmp_path / "rec"), "--steps", "12", "--batch_size", "16", "--train_samples", "12",
         "--val_samples", "4", "--modes", "easy", "--channels", "8", "16", "32", "32", "--hidden", "32",
         "--log_every", "4", "--threads", "1", "--device", "cpu"]
    )  # fmt: skip
    assert [r["step"] for r in report["log"]] == [1, 4, 8, 12]
    assert all(np.isfinite(r["loss"]) for r in report["log"])
    assert report["heldout_clean"]["lines"] >= 4 and 0 <= report["heldout_clean"]["word_accuracy"] <= 1
    model = WordRecognizer.from_pretrained(tmp_path / "rec")
    assert model.config.channels == (8, 16, 32, 32)
    saved = json.loads((tmp_path / "rec" / "report.json").read_text())
    assert saved["train_lines"] == report["train_lines"] > 0


def test_train_recognizer_rejects_bad_options(tmp_path):
    from textgen.train_recognizer import main

    with pytest.raises(ValueError, match="unknown synth mode"):
        main(["-o", str(tmp_path), "--modes", "fancy"])
    with pytest.raises(ValueError, match="four positive sizes"):
        main(["-o", str(tmp_path), "--channels", "8", "16"])


def test_degraded_crops_are_blurred_and_noisy():
    from textgen.train_recognizer import degrade

    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle((20, 20, 44, 44), fill="black")
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None].repeat(8, 1, 1, 1)
    out = degrade(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert not torch.equal(out, x)
    # a sharp edge is softened on average (blur / down-up scaling)
    edge_in = (x[:, :, 32, 19] - x[:, :, 32, 21]).abs().mean()
    edge_out = (out[:, :, 32, 19] - out[:, :, 32, 21]).abs().mean()
    assert edge_out < edge_in
