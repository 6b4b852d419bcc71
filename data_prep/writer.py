"""The output of the prep job: webdataset shards of triples, per-shard stats, and the list of rejected inputs.

For each shard ``NNNNN`` the output folder gets

* ``NNNNN.tar`` -- ``{key}.jpg|png|webp`` (the stored image: the original bytes where no transform was needed)
  and ``{key}.json`` (a :class:`textgen.core.shards.TripleRecord`: layout, captions, OCR boxes, source), written
  with :func:`textgen.core.shards.write_triple`;
* ``NNNNN_rejected.jsonl`` -- one line per rejected or unreadable input: its key, the input it names, the
  reason and a detail;
* ``NNNNN_stats.json`` -- inputs, written, rejected by reason, dropped boxes by reason, seconds per stage,
  the OCR engine.

Every file is written under a temporary name and renamed when complete, and the stats file comes last: a shard
is done exactly when its stats file exists, so a killed run never leaves a shard that looks complete, and a
rerun redoes only the shards without stats. :func:`merge_rejected` then gathers the per-shard lists into one
``rejected.jsonl``. Invariant, checked when each shard closes: inputs = written + rejected.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from textgen.core.shards import OCRBox, TripleRecord, TripleTarWriter, write_triple

SHARD_RE = re.compile(r"^(\d{5,})_stats\.json$")


def _fsync_write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def input_name(source: dict[str, Any], root: str | None = None) -> str:
    """A human-readable name of an input from its ``source`` dict: a path, ``tar:key`` or ``list:line``."""
    if "tar" in source:
        return f"{source['tar']}:{source['key']}" if source.get("key") else str(source["tar"])
    if "list" in source:
        where = f"{source['list']}:{source['line']}" if source.get("line") else str(source["list"])
        return f"{where} ({source['path']})" if source.get("path") else where
    path = str(source.get("path", "?"))
    return os.path.join(root, path) if root and not os.path.isabs(path) else path


class ShardWriter:
    """Writes one output shard; rows go in one at a time, :meth:`close` publishes it atomically.

    Args:
        out_dir: Output folder.
        shard: Shard name (``"00003"``).
        info: Extra stats fields (``engine``, ``languages``, ``captioner``, ``runner``, ``input``, ``fingerprint``).
        root: Folder that relative input paths start from (for the names in ``rejected.jsonl``).
    """

    def __init__(self, out_dir: str | Path, shard: str, info: dict[str, Any] | None = None, root: str | None = None):
        self.out_dir = Path(out_dir)
        self.shard = shard
        self.info = dict(info or {})
        self.root = root
        self.tar_path = self.out_dir / f"{shard}.tar"
        self.stats_path = self.out_dir / f"{shard}_stats.json"
        self.rejected_path = self.out_dir / f"{shard}_rejected.jsonl"
        self._tar = TripleTarWriter(self.tar_path)
        self._tmp_tar = self._tar.tmp
        self._rejected: list[str] = []
        self._keys: set[str] = set()
        self.inputs = 0
        self.written = 0
        self.boxes = 0
        self.captioned = 0
        self.rejected: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.transforms: Counter[str] = Counter()
        self.stage_seconds: Counter[str] = Counter()
        self._t0 = time.perf_counter()
        self._closed = False

    def add(self, row: dict[str, Any]) -> None:
        """Adds one row (a batch row after the last stage): written as a triple, or recorded as rejected."""
        key = str(row["key"])
        if key in self._keys:
            raise RuntimeError(f"shard {self.shard}: key {key} written twice")
        self._keys.add(key)
        self.inputs += 1
        source = json.loads(row["source"]) if isinstance(row["source"], str) else dict(row["source"])
        for stage, seconds in json.loads(row.get("seconds") or "{}").items():
            self.stage_seconds[stage] += float(seconds)
        self.dropped.update(json.loads(row.get("dropped") or "{}"))
        reason = str(row.get("reject") or "")
        if reason:
            self.rejected[reason] += 1
            entry = {
                "key": key,
                "shard": self.shard,
                "input": input_name(source, self.root),
                "reason": reason,
                "detail": str(row.get("detail") or ""),
            }
            self._rejected.append(json.dumps(entry, ensure_ascii=False))
            return
        t0 = time.perf_counter()
        record = self.make_record(row, source)
        write_triple(self._tar, record, bytes(row["image"]), str(row["image_ext"]))
        self.stage_seconds["write"] += time.perf_counter() - t0
        self.written += 1
        self.boxes += len(record.ocr)
        self.captioned += row.get("caption_source") == "captioner"
        self.transforms.update(t for t in str(row.get("transforms") or "").split(",") if t)

    def make_record(self, row: dict[str, Any], source: dict[str, Any]) -> TripleRecord:
        """The triple's JSON half: the layout is exactly ``ocr_to_layout`` of the kept OCR boxes."""
        from textgen.core.ocr import ocr_to_layout

        width, height = int(row["width"]), int(row["height"])
        boxes = [OCRBox.from_dict(d) for d in json.loads(row["ocr"])]
        caption = str(row.get("caption") or "") or None
        source = dict(source)
        source["shard"] = self.shard
        if row.get("transforms"):
            source["transforms"] = str(row["transforms"]).split(",")
        if row.get("caption_source"):
            source["caption_source"] = str(row["caption_source"])
        if self.info.get("engine"):
            source["ocr_engine"] = self.info["engine"]
        return TripleRecord(
            key=str(row["key"]),
            width=width,
            height=height,
            layout=ocr_to_layout(boxes, width, height, caption=caption),
            caption=caption,
            training_caption=str(row.get("training_caption") or "") or caption,
            ocr=boxes,
            source=source,
        )

    def close(self) -> dict[str, Any]:
        """Publishes the shard: tar, rejected list, then stats (each renamed into place). Returns the stats.

        Raises:
            RuntimeError: inputs != written + rejected (a bug, never bad input).
        """
        rejected_total = sum(self.rejected.values())
        if self.inputs != self.written + rejected_total:
            self.abort()
            raise RuntimeError(
                f"shard {self.shard}: {self.inputs} inputs != {self.written} written + {rejected_total} rejected"
            )
        self._tar.close()
        self._closed = True
        tmp = self.out_dir / f".{self.shard}_rejected.jsonl.partial"
        _fsync_write(tmp, "".join(line + "\n" for line in self._rejected))
        os.replace(tmp, self.rejected_path)
        stats = {
            "shard": self.shard,
            **{k: v for k, v in self.info.items() if k in ("input", "fingerprint")},
            "inputs": self.inputs,
            "written": self.written,
            "rejected_total": rejected_total,
            "rejected": dict(sorted(self.rejected.items())),
            "dropped_boxes": dict(sorted(self.dropped.items())),
            "boxes": self.boxes,
            "captioned": self.captioned,
            "transforms": dict(sorted(self.transforms.items())),
            "seconds": round(time.perf_counter() - self._t0, 3),
            "stage_seconds": {k: round(v, 3) for k, v in sorted(self.stage_seconds.items())},
            **{k: v for k, v in self.info.items() if k not in ("input", "fingerprint")},
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        tmp = self.out_dir / f".{self.shard}_stats.json.partial"
        _fsync_write(tmp, json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, self.stats_path)
        return stats

    def abort(self) -> None:
        """Drops the unfinished shard (its temporary tar); nothing of it is published."""
        if not self._closed:
            self._tar.abort()
            self._closed = True


# ------------------------------------------------------------------------------------------ output folder
def shard_done(out_dir: str | Path, shard: str) -> bool:
    """A shard is done when its stats file exists (it is written last)."""
    return (Path(out_dir) / f"{shard}_stats.json").is_file()


def read_stats(out_dir: str | Path, shard: str) -> dict[str, Any]:
    path = Path(out_dir) / f"{shard}_stats.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable stats file ({err}); delete it to redo the shard") from err


def remove_partials(out_dir: str | Path) -> list[Path]:
    """Deletes the temporary files a killed run left behind; returns them."""
    removed = []
    for path in Path(out_dir).glob(".*.partial"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def merge_rejected(out_dir: str | Path) -> int:
    """Rewrites ``rejected.jsonl`` from the per-shard lists of finished shards (in shard order); returns its lines."""
    out = Path(out_dir)
    lines: list[str] = []
    for stats in sorted(out.glob("*_stats.json")):
        match = SHARD_RE.match(stats.name)
        if not match:
            continue
        part = out / f"{match.group(1)}_rejected.jsonl"
        if part.is_file():
            lines.extend(line for line in part.read_text(encoding="utf-8").splitlines() if line.strip())
    tmp = out / ".rejected.jsonl.partial"
    _fsync_write(tmp, "".join(line + "\n" for line in lines))
    os.replace(tmp, out / "rejected.jsonl")
    return len(lines)


def summarize(out_dir: str | Path) -> dict[str, Any]:
    """Totals over the finished shards of an output folder."""
    out = Path(out_dir)
    totals: dict[str, Any] = {"shards": 0, "inputs": 0, "written": 0, "rejected_total": 0, "boxes": 0}
    rejected: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    stage_seconds: Counter[str] = Counter()
    for path in sorted(out.glob("*_stats.json")):
        if not SHARD_RE.match(path.name):
            continue
        stats = json.loads(path.read_text(encoding="utf-8"))
        totals["shards"] += 1
        for k in ("inputs", "written", "rejected_total", "boxes"):
            totals[k] += int(stats.get(k, 0))
        rejected.update(stats.get("rejected", {}))
        dropped.update(stats.get("dropped_boxes", {}))
        stage_seconds.update(stats.get("stage_seconds", {}))
    totals["rejected"] = dict(sorted(rejected.items()))
    totals["dropped_boxes"] = dict(sorted(dropped.items()))
    totals["stage_seconds"] = {k: round(v, 3) for k, v in sorted(stage_seconds.items())}
    return totals
