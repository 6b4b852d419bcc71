"""The on-disk triple format shared by the data stage, the synthetic generator and every trainer.

A shard is a webdataset tar: per sample ``{key}.jpg`` or ``{key}.png`` (the image; original bytes where the
source allowed) and ``{key}.json``, a :class:`TripleRecord`::

    {
      "key": "000012_0042",
      "width": 512, "height": 512,                 # of the stored image
      "caption": "a tin sign on a brick wall",     # source caption / alt-text / captioner output
      "training_caption": "a tin sign ... that reads \\"OPEN\\" \\"24/7\\"",
      "layout": {... textgen.core.layout.Layout.to_dict() ...},   # boxes normalised to the image
      "ocr": [{"text": "OPEN", "polygon": [[x, y], ...], "box": [x0, y0, x1, y1],
               "confidence": 0.98, "language": "en"}],     # pixels of the stored image
      "source": {...}                              # where it came from: path, url, shard, synth params
    }

Glyph images are rendered from ``layout`` when needed. Synthetic samples also carry ``{key}.mask.png``, the ink
of their text exactly as drawn (white on black): the renderer's own fit of a box lands a few pixels inside it.

A sample may carry further members (e.g. ``{key}.mask.png``) that readers pass through by extension.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from textgen.core.layout import Layout

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


@dataclass(frozen=True)
class OCRBox:
    """One OCR detection, in pixels of the image it was read from.

    Args:
        text: The recognised string.
        polygon: Corner points ``((x, y), ...)``, clockwise from top-left as the engine gives them.
        box: Axis-aligned ``(x0, y0, x1, y1)`` around the polygon.
        confidence: Recognition confidence in ``[0, 1]``.
        language: Language/script tag of the recogniser (``"en"``, ``"ch"``), when known.
    """

    text: str
    polygon: tuple[tuple[float, float], ...]
    box: tuple[float, float, float, float]
    confidence: float
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "polygon": [[float(x), float(y)] for x, y in self.polygon],
            "box": [float(v) for v in self.box],
            "confidence": float(self.confidence),
            "language": self.language,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OCRBox:
        return cls(
            text=data["text"],
            polygon=tuple((float(x), float(y)) for x, y in data["polygon"]),
            box=tuple(float(v) for v in data["box"]),
            confidence=float(data["confidence"]),
            language=data.get("language"),
        )

    @classmethod
    def from_polygon(cls, text: str, polygon: Iterable[Iterable[float]], confidence: float, language=None) -> OCRBox:
        points = tuple((float(x), float(y)) for x, y in polygon)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return cls(text, points, (min(xs), min(ys), max(xs), max(ys)), float(confidence), language)


@dataclass
class TripleRecord:
    """The JSON half of a stored triple (see the module docstring for the format)."""

    key: str
    width: int
    height: int
    layout: Layout
    caption: str | None = None
    training_caption: str | None = None
    ocr: list[OCRBox] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "width": self.width,
            "height": self.height,
            "caption": self.caption,
            "training_caption": self.training_caption,
            "layout": self.layout.to_dict(),
            "ocr": [b.to_dict() for b in self.ocr],
            "source": self.source,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source_name: str = "record") -> TripleRecord:
        for name in ("key", "width", "height", "layout"):
            if name not in data:
                raise ValueError(f"{source_name}: missing field {name!r}")
        return cls(
            key=data["key"],
            width=int(data["width"]),
            height=int(data["height"]),
            layout=Layout.from_dict(data["layout"], source=f"{source_name}: layout"),
            caption=data.get("caption"),
            training_caption=data.get("training_caption"),
            ocr=[OCRBox.from_dict(b) for b in data.get("ocr", [])],
            source=dict(data.get("source") or {}),
        )


@dataclass
class Triple:
    """A decoded triple as trainers consume it."""

    record: TripleRecord
    image: Image.Image

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def layout(self) -> Layout:
        return self.record.layout

    @property
    def caption(self) -> str:
        """The caption to train on: the training form when present, else the source caption."""
        return self.record.training_caption or self.record.caption or ""


def write_triple(
    tar: Any, record: TripleRecord, image_bytes: bytes, image_ext: str, extra: dict[str, bytes] | None = None
) -> None:
    """Writes one triple with a ``webdataset.TarWriter`` (or anything with ``.write(dict)``).

    Args:
        tar: The writer.
        record: The JSON half.
        image_bytes: The encoded image.
        image_ext: Its extension (one of :data:`IMAGE_EXTENSIONS`).
        extra: More members by extension, e.g. ``{"mask.png": ...}``.
    """
    ext = image_ext.lower().lstrip(".")
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"{record.key}: image extension {ext!r} is not one of {IMAGE_EXTENSIONS}")
    clash = set(extra or {}) & {ext, "json", "__key__"}
    if clash:
        raise ValueError(f"{record.key}: extra members {sorted(clash)} would overwrite the image or record")
    tar.write({"__key__": record.key, ext: image_bytes, "json": record.to_json().encode("utf-8"), **(extra or {})})


def encode_image(image: Image.Image, fmt: str = "png", quality: int = 95) -> bytes:
    """Encodes a PIL image to bytes (``png`` lossless, or ``jpg``)."""
    buf = io.BytesIO()
    if fmt in ("jpg", "jpeg"):
        image.convert("RGB").save(buf, format="JPEG", quality=quality)
    else:
        image.save(buf, format="PNG")
    return buf.getvalue()


def iter_shard(path: str | Path) -> Iterator[Triple]:
    """Yields the triples of one shard in stored order.

    Raises:
        ValueError: naming the shard and key of a sample without an image or with a malformed record, or a shard
            damaged or cut short (:class:`ShardDamaged`).
    """
    for key, files in iter_tar(path):
        if "json" not in files:
            continue  # e.g. a stray file; triples always carry their json
        record, image_bytes = decode_sample(files, where=f"{path}: {key}")
        image = Image.open(io.BytesIO(image_bytes))
        image.load()
        yield Triple(record=record, image=image)


def decode_sample(files: dict[str, bytes], where: str) -> tuple[TripleRecord, bytes]:
    """Parses one stored sample: its ``json`` member and the bytes of its image member.

    Args:
        files: The sample's tar members by extension (``{"json": b"...", "png": b"..."}``).
        where: Names the sample in errors (``"shard.tar: key"``).

    Raises:
        ValueError: naming the sample, for invalid JSON, a malformed record or a missing image.
    """
    try:
        record = TripleRecord.from_dict(json.loads(files["json"]), source_name=where)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}.json: invalid JSON ({err.msg})") from err
    ext = next((e for e in IMAGE_EXTENSIONS if e in files), None)
    if ext is None:
        raise ValueError(f"{where}: no image ({'/'.join(IMAGE_EXTENSIONS)}) beside the json")
    return record, files[ext]


def tar_end_problem(path: str | Path, end: int) -> str | None:
    """Why an uncompressed tar whose last member ends at byte ``end`` is truncated, or ``None`` when it is whole.

    A tar ends with an end-of-archive marker (zero blocks). A file cut at a 512-byte block boundary after a
    complete member reads as a shorter, valid archive: the members after the cut vanish without an error. So
    the block after the last member must be there and be zeros. Compressed tars carry their own length check.
    """
    path = Path(path)
    with path.open("rb") as f:
        if f.read(2) == b"\x1f\x8b":
            return None  # gzip: a truncated stream fails to decompress
        f.seek(end)
        block = f.read(512)
    if len(block) < 512 or block.count(0) != 512:
        return (
            f"{path}: the archive ends at byte {path.stat().st_size} without its end-of-archive marker (cut short?): "
            "members after the last complete one are lost, how many is unknown"
        )
    return None


def member_end(member: tarfile.TarInfo) -> int:
    """Byte offset just past a tar member's data (padded to the 512-byte block)."""
    return member.offset_data + -(-member.size // 512) * 512


TAR_MTIME = 946684800.0  # 2000-01-01: members carry a fixed time, so equal input gives equal shard bytes


class ShardDamaged(ValueError):
    """A tar shard is damaged or cut short; the samples before the damage were read.

    Attributes:
        path: The shard.
        last_key: The last sample read whole (``None`` when none was).
        truncated: ``True`` for a tar that ends without its end-of-archive marker (members after the cut are
            lost, how many is unknown); ``False`` for unreadable data.
    """

    def __init__(self, message: str, path: str | Path, last_key: str | None, truncated: bool) -> None:
        super().__init__(message)
        self.path, self.last_key, self.truncated = str(path), last_key, truncated


def split_member(name: str) -> tuple[str, str]:
    """webdataset's rule: the key is the path up to the first dot of the file name; the rest is the extension."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def iter_tar(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The samples of a webdataset tar in stored order: ``(key, {extension: bytes})``, nothing decoded.

    Streams (huge shards are fine). Members of one key are grouped while consecutive, as webdataset groups them;
    hidden files and ``_``-prefixed helpers are skipped. The one tar reader of textgen: the data stage, the
    trainers and every shard reader use it, so damage is found the same way everywhere.

    Raises:
        ShardDamaged: after the last whole sample, when the tar is unreadable further on or cut short (also
            exactly at a 512-byte block boundary, which reads as a valid, shorter archive: see
            :func:`tar_end_problem`).
    """
    key: str | None = None
    files: dict[str, bytes] = {}
    last: str | None = None
    end = 0
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                end = max(end, member_end(member))
                if not member.isfile():
                    continue
                src_key, ext = split_member(member.name)
                if src_key.rpartition("/")[2].startswith((".", "_")) or not ext:
                    continue
                if key is not None and src_key != key:
                    yield key, files
                    last, files = key, {}
                key = src_key
                handle = tar.extractfile(member)
                files[ext] = handle.read() if handle else b""
    except (tarfile.TarError, OSError, EOFError) as err:
        after = f" after sample {key!r}" if key else ""
        raise ShardDamaged(f"{path}: unreadable{after} ({type(err).__name__}: {err})", path, last, False) from err
    if key is not None:
        yield key, files
        last = key
    problem = tar_end_problem(path, end)
    if problem:
        raise ShardDamaged(problem + (f" (last whole sample {last!r})" if last else ""), path, last, True)


class TripleTarWriter:
    """Writes a webdataset tar (``key.ext`` members, sorted, read-only, fixed time) whole or not at all.

    Members go to ``.NAME.partial`` beside the final path; :meth:`close` flushes, fsyncs and renames it into
    place, :meth:`abort` removes it. The standard library alone: importing webdataset imports torch, seconds in
    every worker of a job that needs neither (the tests read these shards back with webdataset itself). The one
    tar writer of textgen: the data stage's shards and the synthetic ones.

    Args:
        path: The final shard path.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self._file = open(self.tmp, "wb")  # noqa: SIM115  (closed in close()/abort())
        self._tar = tarfile.open(fileobj=self._file, mode="w|")  # noqa: SIM115
        self.count = 0

    def write(self, sample: dict[str, Any]) -> None:
        """Writes one sample: ``{"__key__": key, ext: bytes or str, ...}``."""
        key = sample["__key__"]
        for name in sorted(sample):
            if name.startswith("_"):
                continue
            data = sample[name]
            data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            info = tarfile.TarInfo(f"{key}.{name}")
            info.size, info.mtime, info.mode = len(data), TAR_MTIME, 0o444
            info.uname = info.gname = "bigdata"
            self._tar.addfile(info, io.BytesIO(data))
        self.count += 1

    def close(self, sync: bool = True) -> Path:
        """Completes the tar and renames it to its final name; returns that path."""
        if not self._file.closed:
            try:
                self._tar.close()
                self._file.flush()
                if sync:
                    os.fsync(self._file.fileno())
            finally:
                self._file.close()
            os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drops the unfinished tar: nothing of it is published."""
        if not self._file.closed:
            with contextlib.suppress(Exception):  # the writer may be broken already; removing the file matters
                self._file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> TripleTarWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def shard_paths(root: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expands a folder (its ``*.tar``, sorted), a single tar, or a list of them into shard paths."""
    if isinstance(root, (str, Path)):
        root = Path(root)
        if root.is_dir():
            paths = sorted(root.glob("*.tar"))
            if not paths:
                raise FileNotFoundError(f"{root}: no .tar shards in this folder")
            return paths
        if not root.is_file():
            raise FileNotFoundError(f"{root}: no such shard or folder")
        return [root]
    return [p for r in root for p in shard_paths(r)]


def iter_triples(root: str | Path | Iterable[str | Path]) -> Iterator[Triple]:
    """Yields every triple of the shards under ``root`` (see :func:`shard_paths`)."""
    for path in shard_paths(root):
        yield from iter_shard(path)
