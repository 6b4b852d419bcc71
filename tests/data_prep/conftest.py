"""Shared inputs for the prep tests: legible images in awkward encodings, corrupt files, real photos, a fake engine."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from textgen.core.glyph import render_glyph
from textgen.core.layout import Layout, TextBox
from textgen.core.shards import OCRBox

REPO = Path(__file__).resolve().parents[2]
SHARED_BENCHMARKS = REPO.parent / "shared" / "benchmarks"
# Real scene photos with text RapidOCR reads, and one without (ICDAR-2015; the test group is motion-blurred).
ICDAR_IMAGES = (
    "ocr/images/icdar2015_test/img_48.jpg",
    "ocr/images/icdar2015_test/img_125.jpg",
    "ocr/images/icdar2015_mmocr/img_8.jpg",
)

os.environ.setdefault("OMP_NUM_THREADS", "1")


def glyph_image(text: str = "OPEN", size: tuple[int, int] = (320, 320)) -> Image.Image:
    """Black text on white, large enough for any OCR engine."""
    layout = Layout(size[0], size[1], (TextBox(text, (0.12, 0.3, 0.88, 0.7)),))
    return render_glyph(layout).convert("RGB")


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 60-byte PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def exif_rotated_jpeg(upright: Image.Image) -> bytes:
    """JPEG whose pixels are stored turned 90 degrees, with EXIF orientation 6 telling viewers to turn them back."""
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def sixteen_bit_png(image: Image.Image) -> bytes:
    grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


def rgba_png(image: Image.Image) -> bytes:
    """Black text on a transparent background (the colour under the transparent pixels is black too)."""
    alpha = 255 - np.asarray(image.convert("L"))
    rgba = np.zeros((image.height, image.width, 4), dtype=np.uint8)
    rgba[..., 3] = alpha
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


# name -> what the prep job must do with it: ("reject", reason) or ("write", transform or None)
AWKWARD_EXPECTED = {
    "a_clean.png": ("write", None),
    "b_cmyk.jpg": ("write", "cmyk_to_rgb"),
    "c_16bit.png": ("write", "16bit_to_8bit"),
    "d_exif.jpg": ("write", "exif_transpose"),
    "e_alpha.png": ("write", "alpha_to_white"),
    "f_palette.png": ("write", "palette_to_rgb"),
    "g_empty.jpg": ("reject", "empty_file"),
    "h_truncated.jpg": ("reject", "truncated"),
    "i_text.jpg": ("reject", "not_an_image"),
    "j_bomb.png": ("reject", "too_many_pixels"),
    "k_tiny.png": ("reject", "image_too_small"),
    "l_blank.png": ("reject", "no_text"),
}
AWKWARD_TEXT = {
    "a_clean.png": "OPEN",
    "b_cmyk.jpg": "SALE",
    "c_16bit.png": "CAFE",
    "d_exif.jpg": "EXIT",
    "e_alpha.png": "STOP",
    "f_palette.png": "BAR",
}


def write_awkward_inputs(folder: Path) -> dict[str, tuple[str, str | None]]:
    """Writes legible images in every awkward encoding plus corrupt files; returns :data:`AWKWARD_EXPECTED`."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "a_clean.png": encode(glyph_image("OPEN"), "PNG"),
        "b_cmyk.jpg": encode(glyph_image("SALE").convert("CMYK"), "JPEG", quality=95),
        "c_16bit.png": sixteen_bit_png(glyph_image("CAFE")),
        "d_exif.jpg": exif_rotated_jpeg(glyph_image("EXIT", (400, 300))),
        "e_alpha.png": rgba_png(glyph_image("STOP")),
        "f_palette.png": encode(glyph_image("BAR").convert("P"), "PNG"),
        "g_empty.jpg": b"",
        "h_truncated.jpg": encode(glyph_image("HALF"), "JPEG", quality=95)[:1500],
        "i_text.jpg": b"this is a text file, not a JPEG\n" * 4,
        "j_bomb.png": png_bomb(),
        "k_tiny.png": encode(glyph_image("HI", (100, 100)), "PNG"),
        "l_blank.png": encode(Image.new("RGB", (300, 300), (200, 220, 240)), "PNG"),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return dict(AWKWARD_EXPECTED)


def copy_icdar_images(folder: Path, names=ICDAR_IMAGES) -> list[str]:
    """Copies a few real ICDAR-2015 photos from ../shared/benchmarks; skips the test when they are absent."""
    sources = [SHARED_BENCHMARKS / n for n in names]
    if not all(p.is_file() for p in sources):
        pytest.skip(f"real benchmark images not found under {SHARED_BENCHMARKS}")
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sources:
        name = f"{src.parent.name}_{src.name}"
        shutil.copyfile(src, folder / name)
        out.append(name)
    return out


class FakeEngine:
    """Stands in for an OCR engine: reads a fixed text in the middle of every image, or raises on tiny ones."""

    name = "fake"

    def __init__(self, text: str = "HELLO", confidence: float = 0.9, fail_below: int = 0) -> None:
        self.text, self.confidence, self.fail_below = text, confidence, fail_below
        self.calls = 0

    def read(self, image: Image.Image) -> list[OCRBox]:
        self.calls += 1
        w, h = image.size
        if min(w, h) < self.fail_below:
            raise RuntimeError("engine exploded")
        polygon = ((0.2 * w, 0.4 * h), (0.8 * w, 0.4 * h), (0.8 * w, 0.6 * h), (0.2 * w, 0.6 * h))
        return [OCRBox.from_polygon(self.text, polygon, self.confidence, "en")]

    def read_batch(self, images):
        return [self.read(im) for im in images]


@pytest.fixture
def awkward_folder(tmp_path: Path) -> tuple[Path, dict[str, tuple[str, str | None]]]:
    folder = tmp_path / "awkward"
    return folder, write_awkward_inputs(folder)


@pytest.fixture(scope="session")
def rapid_engine():
    from textgen.core.ocr import get_engine

    return get_engine("rapidocr", languages=("en",), threads=1)


def write_synthetic_folder(folder: Path, n: int = 6, size: int = 256, seed: int = 11) -> list[str]:
    """``n`` synthetic posters as PNG files (every other one with a ``.txt`` caption) and two corrupt files."""
    from data_prep.synth import generate_synthetic

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (image, record) in enumerate(generate_synthetic(n, size=size, seed=seed)):
        name = f"syn_{i:02d}.png"
        image.save(folder / name)
        if i % 2 == 0:
            (folder / f"syn_{i:02d}.txt").write_text(record.caption or "", encoding="utf-8")
        names.append(name)
    (folder / "zz_empty.jpg").write_bytes(b"")
    (folder / "zz_text.jpg").write_bytes(b"not an image")
    return names + ["zz_empty.jpg", "zz_text.jpg"]


@pytest.fixture(scope="session")
def synthetic_job(tmp_path_factory):
    """A small folder job (8 inputs, 4 shards of 2) run once with the local runner in this process.

    Returns:
        ``(input_folder, output_folder, summary)``; tests compare other runs (other runners, a killed and
        resumed run) against this output, and must not modify it.
    """
    from data_prep.runners import PrepConfig, run_prep

    root = tmp_path_factory.mktemp("synthetic_job")
    write_synthetic_folder(root / "in")
    summary = run_prep(PrepConfig(input=str(root / "in"), output=str(root / "out"), shard_size=2, progress=False))
    return root / "in", root / "out", summary


def shard_contents(out_dir: Path) -> dict[str, dict]:
    """Key -> what a sample became: ``{"texts", "boxes", "caption", "training_caption", "path"}`` for written
    triples, ``{"reason", "input"}`` for rejected inputs. Fails on a key that appears twice."""
    import json

    from textgen.core.shards import iter_triples

    out: dict[str, dict] = {}
    for triple in iter_triples(out_dir):
        r = triple.record
        assert r.key not in out, f"{r.key} written twice"
        out[r.key] = {
            "texts": r.layout.texts,
            "boxes": [[round(v, 3) for v in b.box] for b in r.layout.boxes],
            "caption": r.caption,
            "training_caption": r.training_caption,
            "path": r.source.get("path"),
        }
    for line in (out_dir / "rejected.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        assert entry["key"] not in out, f"{entry['key']} both written and rejected, or rejected twice"
        out[entry["key"]] = {"reason": entry["reason"], "input": Path(entry["input"]).name}
    return out


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (tests/data_prep is not a package, so they cannot import this file)."""
    import types

    return types.SimpleNamespace(
        AWKWARD_EXPECTED=AWKWARD_EXPECTED,
        AWKWARD_TEXT=AWKWARD_TEXT,
        FakeEngine=FakeEngine,
        copy_icdar_images=copy_icdar_images,
        encode=encode,
        exif_rotated_jpeg=exif_rotated_jpeg,
        glyph_image=glyph_image,
        png_bomb=png_bomb,
        shard_contents=shard_contents,
        write_awkward_inputs=write_awkward_inputs,
        write_synthetic_folder=write_synthetic_folder,
    )
