"""Inputs of the prep job: shards of raw samples, and the decode stage that turns their bytes into valid images.

The unit of work is one shard (as in img2dataset): :func:`plan_shards` cuts the input into :class:`ShardTask`
objects (small, picklable, one per output shard) and :func:`read_shard` yields the :class:`RawSample` of one of
them. Three inputs:

* a folder of images, searched recursively, with an optional sidecar caption per image (``photo.jpg`` +
  ``photo.txt`` or ``photo.json``); the sorted file list is cut into shards of ``shard_size`` files;
* webdataset tar shards, including img2dataset's output (``key.jpg`` + ``key.txt`` + ``key.json``); one
  input tar is one output shard;
* a list file -- JSONL or parquet -- with a path column and an optional caption column; paths are relative
  to the list file's folder; rows are cut into shards of ``shard_size``.

Readers never decode: they hand over the raw bytes, and an input they cannot even read (missing file, a tar
entry without an image, a truncated tar) becomes a sample that already carries its rejection reason. Decoding
happens in :class:`DecodeStage`, so that bad bytes are rejected with a reason instead of crashing a reader.

Output keys are ``{shard}_{index:06d}``: stable across reruns of the same input, unique, and safe as webdataset
keys (no dots or slashes); where each sample came from is kept in its ``source``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textgen.core.shards import ShardDamaged, iter_tar

# Extensions a folder or tar reader treats as images. Anything else named like an image (a text file called
# .jpg) is read and then rejected by the decode stage as "not_an_image".
IMAGE_FILE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Keys of a sidecar/list/img2dataset JSON that hold the caption, in order of preference.
CAPTION_KEYS = ("caption", "text", "alt", "alt_text", "TEXT", "caption_origin", "prompt")
# Columns of a list file that hold the image path, in order of preference.
PATH_KEYS = ("path", "image", "image_path", "file", "filepath", "filename")
INPUT_FORMATS = ("auto", "folder", "webdataset", "list")


# --------------------------------------------------------------------------------------------- data types
@dataclass
class RawSample:
    """One input as a reader yields it.

    Args:
        key: Output key ``{shard}_{index:06d}``.
        shard: Output shard name.
        index: Position in the shard.
        data: The raw file bytes (``b""`` when the input could not be read at all).
        caption: The source caption / alt-text, ``None`` when there is none.
        source: Where the sample came from (``path``; or ``tar`` + ``key``; ``url`` and metadata when known).
        reject: A rejection reason the reader already knows (``"missing_file"``, ``"no_image"``...), else ``None``.
        detail: Human-readable detail of the rejection.
    """

    key: str
    shard: str
    index: int
    data: bytes
    caption: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    reject: str | None = None
    detail: str = ""

    def to_row(self) -> dict[str, Any]:
        """The sample as a batch row with every column the stages use (stable types for Ray's schema)."""
        return {
            "key": self.key,
            "shard": self.shard,
            "index": int(self.index),
            "data": bytes(self.data),
            "caption": self.caption or "",
            "source": json.dumps(self.source, ensure_ascii=False, default=str),
            "reject": self.reject or "",
            "detail": self.detail,
            "image": b"",
            "image_ext": "",
            "width": 0,
            "height": 0,
            "transforms": "",
            "ocr": "[]",
            "dropped": "{}",
            "caption_source": "source" if self.caption else "",
            "training_caption": "",
            "seconds": "{}",
        }


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: the inputs of one output shard.

    Args:
        shard: Output shard name (``"00003"``).
        kind: ``"folder"``, ``"webdataset"`` or ``"list"``.
        items: Folder: image paths. List: rows as JSON strings (already parsed once to cut the shards).
        path: Webdataset: the input tar. List: the list file.
        root: Folder: the input folder. List: the folder relative paths start from.
        first_row: List: line/row number of the first item (for error messages).
    """

    shard: str
    kind: str
    items: tuple[str, ...] = ()
    path: str | None = None
    root: str | None = None
    first_row: int = 0

    @property
    def expected(self) -> int | None:
        """Number of inputs when known before reading (folders and lists); ``None`` for tars."""
        return None if self.kind == "webdataset" else len(self.items)

    def describe(self) -> str:
        if self.kind == "webdataset":
            return str(self.path)
        if self.kind == "folder":
            return f"{self.root}: {len(self.items)} files from {self.items[0] if self.items else '-'}"
        return f"{self.path}: rows {self.first_row}-{self.first_row + len(self.items) - 1}"

    def fingerprint(self) -> str:
        """A digest of what this task reads; a rerun whose input changed under a finished shard is refused.

        Folders: the relative paths with each file's size and modification time (a file rewritten under the same
        name is caught; a moved folder still resumes). Lists: the rows. Tars: the file name and size.
        """
        h = hashlib.sha1(self.kind.encode())
        if self.kind == "webdataset":  # name and size: the input may move, a rewritten tar is caught
            size = os.path.getsize(self.path) if self.path and os.path.exists(self.path) else -1
            h.update(f"{os.path.basename(str(self.path))}|{size}".encode())
        else:  # relative paths / list rows: the input folder may move
            for item in self.items:
                h.update(b"\0" + item.encode("utf-8", "surrogateescape"))
                if self.kind == "folder" and self.root:
                    try:
                        st = os.stat(os.path.join(self.root, item))
                        h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
                    except OSError:
                        h.update(b"|missing")
        return h.hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(
            {
                "shard": self.shard,
                "kind": self.kind,
                "items": list(self.items),
                "path": self.path,
                "root": self.root,
                "first_row": self.first_row,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ShardTask:
        d = json.loads(text)
        return cls(d["shard"], d["kind"], tuple(d["items"]), d["path"], d["root"], int(d["first_row"]))


# ----------------------------------------------------------------------------------------------- planning
def _shard_name(i: int) -> str:
    return f"{i:05d}"


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_FILE_EXTENSIONS)


def detect_format(input_path: str | Path) -> str:
    """Guesses the input kind: ``"webdataset"`` (a .tar or a folder of them), ``"list"`` or ``"folder"``.

    Raises:
        FileNotFoundError: the input does not exist.
    """
    path = Path(input_path)
    name = str(input_path)
    if any(ch in name for ch in "*?[") and not path.exists():
        return "webdataset"  # a glob of tar shards
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such input file or folder")
    if path.is_file():
        if path.name.endswith(".tar"):
            return "webdataset"
        if path.suffix.lower() in (".jsonl", ".parquet", ".json"):
            return "list"
        raise ValueError(f"{path}: expected a folder, a .tar shard, a .jsonl or a .parquet list")
    if any(path.glob("*.tar")) and not any(_is_image_name(p.name) for p in path.iterdir()):
        return "webdataset"
    return "folder"


def plan_shards(
    input_path: str | Path,
    shard_size: int = 1000,
    input_format: str = "auto",
    path_column: str | None = None,
    caption_column: str | None = None,
) -> list[ShardTask]:
    """Cuts an input into shard tasks, in a stable order.

    Args:
        input_path: A folder of images, a folder of ``.tar`` shards, one ``.tar``, a glob of tars
            (``"in/*.tar"``), or a ``.jsonl`` / ``.parquet`` list.
        shard_size: Inputs per output shard for folders and lists (a tar keeps its own size).
        input_format: ``"auto"`` (see :func:`detect_format`), ``"folder"``, ``"webdataset"`` or ``"list"``.
        path_column: List column with the image path (default: the first of :data:`PATH_KEYS` present).
        caption_column: List column with the caption (default: the first of :data:`CAPTION_KEYS` present).

    Returns:
        The tasks, shard names ``00000``, ``00001``... in input order.

    Raises:
        FileNotFoundError: the input does not exist or holds no images/shards/rows.
        ValueError: bad ``shard_size``/``input_format``, or a list without a path column.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    kind = detect_format(input_path) if input_format == "auto" else input_format
    if kind == "folder":
        return _plan_folder(Path(input_path), shard_size)
    if kind == "webdataset":
        return _plan_tars(input_path)
    return _plan_list(Path(input_path), shard_size, path_column, caption_column)


def _plan_folder(root: Path, shard_size: int) -> list[ShardTask]:
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and _is_image_name(name):
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
    files.sort()
    if not files:
        raise FileNotFoundError(f"{root}: no image files ({', '.join(IMAGE_FILE_EXTENSIONS)}) in this folder")
    return [
        ShardTask(_shard_name(i), "folder", tuple(files[start : start + shard_size]), root=str(root))
        for i, start in enumerate(range(0, len(files), shard_size))
    ]


def _plan_tars(input_path: str | Path) -> list[ShardTask]:
    path = Path(input_path)
    if path.is_dir():
        tars = sorted(path.glob("*.tar"))
    elif path.is_file():
        tars = [path]
    else:
        import glob

        tars = [Path(p) for p in sorted(glob.glob(str(input_path)))]
    if not tars:
        raise FileNotFoundError(f"{input_path}: no .tar shards found")
    return [ShardTask(_shard_name(i), "webdataset", path=str(p)) for i, p in enumerate(tars)]


def _pick(keys: Sequence[str], wanted: str | None, candidates: Sequence[str]) -> str | None:
    if wanted is not None:
        return wanted if wanted in keys else None
    return next((c for c in candidates if c in keys), None)


def _plan_list(path: Path, shard_size: int, path_column: str | None, caption_column: str | None) -> list[ShardTask]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such list file")
    rows: list[str] = []
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as err:
            raise ImportError(f"{path}: reading parquet lists needs pyarrow (pip install 'textgen[data]')") from err
        table = pq.read_table(path)
        columns = table.column_names
        pcol = _pick(columns, path_column, PATH_KEYS)
        if pcol is None:
            raise ValueError(
                f"{path}: no path column (expected {path_column or ' or '.join(PATH_KEYS)}); has {columns}"
            )
        ccol = _pick(columns, caption_column, CAPTION_KEYS)
        for record in table.to_pylist():
            rows.append(_list_row(record, pcol, ccol))
    else:
        with path.open(encoding="utf-8") as fh:
            lines = [line for line in fh]
        pcol = ccol = None
        for line in lines:  # pick the columns from the first well-formed row
            try:
                first = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(first, dict):
                pcol = _pick(list(first), path_column, PATH_KEYS)
                ccol = _pick(list(first), caption_column, CAPTION_KEYS)
                break
        if pcol is None and any(line.strip() for line in lines):
            raise ValueError(f"{path}: no path column (expected {path_column or ' or '.join(PATH_KEYS)})")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                rows.append(_list_row(record, pcol, ccol, line=number))
            except ValueError as err:  # kept as a row so that the input is counted and rejected with its line
                rows.append(json.dumps({"error": f"line {number}: {err}", "line": number}))
    if not rows:
        raise FileNotFoundError(f"{path}: the list has no rows")
    return [
        ShardTask(
            _shard_name(i), "list", tuple(rows[start : start + shard_size]), path=str(path), root=str(path.parent)
        )
        for i, start in enumerate(range(0, len(rows), shard_size))
    ]


def _list_row(record: dict[str, Any], pcol: str | None, ccol: str | None, line: int | None = None) -> str:
    value = record.get(pcol) if pcol else None
    caption = record.get(ccol) if ccol else None
    meta = {k: v for k, v in record.items() if k not in (pcol, ccol)}
    row = {"path": value, "caption": caption if isinstance(caption, str) else None, "meta": meta}
    if line is not None:
        row["line"] = line
    return json.dumps(row, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------- reading
def read_shard(task: ShardTask) -> Iterator[RawSample]:
    """Yields the raw samples of one shard task, in a stable order; never raises for bad inputs."""
    if task.kind == "folder":
        yield from _read_folder(task)
    elif task.kind == "webdataset":
        yield from _read_tar(task)
    elif task.kind == "list":
        yield from _read_list(task)
    else:
        raise ValueError(f"shard {task.shard}: unknown task kind {task.kind!r}")


def _read_bytes(path: Path) -> tuple[bytes, str | None, str]:
    import stat

    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):  # a FIFO, socket or device would block or never end
            kind = "FIFO" if stat.S_ISFIFO(mode) else "folder" if stat.S_ISDIR(mode) else "special file"
            return b"", "not_a_regular_file", f"{path}: a {kind}, not a regular file"
        return path.read_bytes(), None, ""
    except FileNotFoundError:
        return b"", "missing_file", f"{path}: no such file"
    except OSError as err:
        return b"", "unreadable_file", f"{path}: {err.strerror or err}"


def _caption_from_json(meta: Any) -> str | None:
    if isinstance(meta, dict):
        for k in CAPTION_KEYS:
            value = meta.get(k)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def _sidecar(image_path: Path) -> tuple[str | None, dict[str, Any]]:
    """Caption and metadata from ``name.txt`` / ``name.json`` beside ``name.jpg`` (txt wins for the caption)."""
    caption: str | None = None
    extra: dict[str, Any] = {}
    stem = image_path.with_suffix("")
    txt, js = Path(f"{stem}.txt"), Path(f"{stem}.json")
    if js.is_file():
        try:
            meta = json.loads(js.read_text(encoding="utf-8"))
            caption = _caption_from_json(meta)
            extra["meta"] = meta
        except (OSError, ValueError) as err:
            extra["sidecar_error"] = f"{js.name}: {err}"
    if txt.is_file():
        try:
            caption = txt.read_text(encoding="utf-8").strip() or caption
        except (OSError, ValueError) as err:
            extra["sidecar_error"] = f"{txt.name}: {err}"
    return caption, extra


def _read_folder(task: ShardTask) -> Iterator[RawSample]:
    root = Path(task.root or ".")
    for index, rel in enumerate(task.items):
        path = root / rel
        data, reject, detail = _read_bytes(path)
        caption, extra = _sidecar(path) if reject is None else (None, {})
        source = {"path": rel, **extra}
        yield RawSample(f"{task.shard}_{index:06d}", task.shard, index, data, caption, source, reject, detail)


def _read_list(task: ShardTask) -> Iterator[RawSample]:
    root = Path(task.root or ".")
    for index, text in enumerate(task.items):
        row = json.loads(text)
        key = f"{task.shard}_{index:06d}"
        if "error" in row:
            yield RawSample(key, task.shard, index, b"", None, {"list": task.path}, "bad_list_row", row["error"])
            continue
        value, caption = row.get("path"), row.get("caption")
        source: dict[str, Any] = {"list": task.path, "path": value}
        if row.get("line") is not None:
            source["line"] = row["line"]
        if row.get("meta"):
            source["meta"] = row["meta"]
        if not isinstance(value, str) or not value:
            yield RawSample(key, task.shard, index, b"", caption, source, "bad_list_row", f"no path in {row}")
            continue
        if value.startswith(("http://", "https://", "s3://", "gs://")):
            detail = f"{value}: a URL; download the images first (e.g. with img2dataset) and list local paths"
            yield RawSample(key, task.shard, index, b"", caption, source, "url_not_supported", detail)
            continue
        path = Path(value) if os.path.isabs(value) else root / value
        data, reject, detail = _read_bytes(path)
        yield RawSample(key, task.shard, index, data, caption, source, reject, detail)


def _read_tar(task: ShardTask) -> Iterator[RawSample]:
    tar_path = str(task.path)
    index = 0

    def emit(src_key: str, files: dict[str, bytes]) -> RawSample:
        nonlocal index
        key = f"{task.shard}_{index:06d}"
        meta: Any = None
        source: dict[str, Any] = {"tar": tar_path, "key": src_key}
        caption = None
        if "json" in files:
            try:
                meta = json.loads(files["json"].decode("utf-8"))
                source["meta"] = meta
                if isinstance(meta, dict) and meta.get("url"):
                    source["url"] = meta["url"]
                caption = _caption_from_json(meta)
            except (UnicodeDecodeError, ValueError) as err:
                source["sidecar_error"] = f"{src_key}.json: {err}"
        if "txt" in files:
            caption = files["txt"].decode("utf-8", "replace").strip() or caption
        # "jpg" before compound names such as "mask.png" (extra images some datasets store beside the photo)
        images = [e for e in files if "." + e.rsplit(".", 1)[-1] in IMAGE_FILE_EXTENSIONS]
        ext = min(images, key=lambda e: ("." in e, images.index(e))) if images else None
        sample = RawSample(key, task.shard, index, b"", caption, source)
        if ext is None:
            sample.reject, sample.detail = "no_image", f"{tar_path}: {src_key} has no image ({sorted(files)})"
        else:
            sample.data = files[ext]
        index += 1
        return sample

    try:
        for src_key, files in iter_tar(tar_path):
            yield emit(src_key, files)
    except ShardDamaged as err:
        # The samples before the damage were yielded; what follows cannot be counted, so the damage itself is
        # one rejected input naming the tar and the last good key.
        reason = "truncated_tar" if err.truncated else "unreadable_tar"
        key = f"{task.shard}_{index:06d}"
        yield RawSample(key, task.shard, index, b"", None, {"tar": tar_path}, reason, str(err))
