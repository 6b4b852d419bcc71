"""The data stage's job and its stages: the settings (:class:`PrepConfig`), the OCR stage, the per-row pipeline
(decode, OCR, filters, captions) and the processing of one shard; the runners spread shards over processes or Ray."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data_prep.captions import CaptionerOptions, CaptionStage, TrainingCaptionOptions
from data_prep.decode import DecodeOptions, DecodeStage, open_stored_image
from data_prep.filters import FilterOptions, FilterStage
from data_prep.readers import INPUT_FORMATS, ShardTask, read_shard
from data_prep.writer import ShardWriter

RUNNERS = ("local", "ray")
CONFIG_FILE = "prep_config.json"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".prep.lock"  # held (flock) by the running prep
# Fields that only change how the job runs, not what it writes: a resumed job may change them.
_RUN_ONLY_FIELDS = ("runner", "workers", "batch_size", "progress", "overwrite", "ray_address", "ray_cpus_per_worker")


@dataclass(frozen=True)
class PrepConfig:
    """Everything one prep job needs.

    Args:
        input: A folder of images, a folder/glob of webdataset ``.tar`` shards, one ``.tar``, or a
            ``.jsonl``/``.parquet`` list of paths (see :func:`data_prep.readers.plan_shards`).
        output: Output folder (created).
        input_format: ``"auto"``, ``"folder"``, ``"webdataset"`` or ``"list"``.
        shard_size: Inputs per output shard (folders and lists; a tar stays one shard).
        path_column: List column with the image path (default: auto-detected).
        caption_column: List column with the caption (default: auto-detected).
        engine: OCR engine name for :func:`textgen.core.ocr.get_engine` (``"default"``, ``"rapidocr"``, ``"easyocr"``).
        languages: OCR languages (``("en",)``, ``("zh", "en")``).
        ocr_options: Further engine options (``threads``, ``model_dir``, ``word_boxes``...).
        decode: Image validation limits.
        filters: Box and sample filters.
        captioner: Optional captioning model.
        training_caption: Training caption templates.
        runner: ``"local"`` or ``"ray"``.
        workers: Worker processes (local) or OCR actors (Ray).
        batch_size: Samples per batch through the stages.
        progress: Show a progress bar.
        overwrite: Delete the output folder's previous shards first instead of resuming.
        ray_address: Address of a running Ray cluster (``None``: use the one initialised, or start a local one).
        ray_cpus_per_worker: CPUs reserved per OCR actor (``None``: 1, or less so that one CPU stays free for
            the read/decode/filter tasks on small machines).
    """

    input: str
    output: str
    input_format: str = "auto"
    shard_size: int = 1000
    path_column: str | None = None
    caption_column: str | None = None
    engine: str = "default"
    languages: tuple[str, ...] = ("en",)
    ocr_options: dict[str, Any] = field(default_factory=dict)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    filters: FilterOptions = field(default_factory=FilterOptions)
    captioner: CaptionerOptions = field(default_factory=CaptionerOptions)
    training_caption: TrainingCaptionOptions = field(default_factory=TrainingCaptionOptions)
    runner: str = "local"
    workers: int = 1
    batch_size: int = 16
    progress: bool = True
    overwrite: bool = False
    ray_address: str | None = None
    ray_cpus_per_worker: float | None = None

    def validate(self) -> PrepConfig:
        """Checks every field and returns the config; raises ``ValueError`` naming the field."""
        if self.runner not in RUNNERS:
            raise ValueError(f"runner must be one of {RUNNERS}, got {self.runner!r}")
        if self.input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {self.input_format!r}")
        for name in ("workers", "batch_size", "shard_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.languages:
            raise ValueError("languages must name at least one language, e.g. ('en',)")
        if self.ray_cpus_per_worker is not None and self.ray_cpus_per_worker <= 0:
            raise ValueError(f"ray_cpus_per_worker must be > 0, got {self.ray_cpus_per_worker}")
        if Path(self.output).resolve() == Path(self.input).resolve():
            raise ValueError(f"output {self.output!r} must not be the input folder")
        self.decode.validate()
        self.filters.validate()
        self.captioner.validate()
        self.training_caption.validate()
        return self

    @property
    def engine_options(self) -> dict[str, Any]:
        """The OCR engine's keyword arguments: one thread unless set (robust on shared machines, see FINDINGS)."""
        return {"threads": 1, **self.ocr_options}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ocr_options"] = self.engine_options
        data["languages"] = list(self.languages)
        if data["filters"]["languages"] is not None:
            data["filters"]["languages"] = list(data["filters"]["languages"])
        return data

    @property
    def engine_name(self) -> str:
        from textgen.core.ocr import DEFAULT_ENGINE

        return DEFAULT_ENGINE if self.engine in ("default", None) else str(self.engine).lower()


# ------------------------------------------------------------------------------------------------- stages
class OCRPrepStage:
    """Batch stage: the stored image of each live row -> ``ocr`` (JSON list of :class:`OCRBox` dicts).

    The engine loads once in ``__init__``. An image the engine fails on is rejected as ``ocr_error`` with the
    exception, never stopping the batch.

    Args:
        engine: Engine name for :func:`textgen.core.ocr.get_engine`.
        languages: OCR languages.
        engine_options: Further engine options (``threads``...).
    """

    def __init__(
        self, engine: str = "default", languages: Iterable[str] = ("en",), engine_options: dict | None = None
    ) -> None:
        from textgen.core.ocr import get_engine

        self.engine = get_engine(engine, languages=tuple(languages), **(engine_options or {}))
        self.name = getattr(self.engine, "name", str(engine))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = {k: list(v) for k, v in batch.items()}
        pixels = out.get("pixels")
        for i in range(len(out["key"])):
            if out["reject"][i]:
                continue
            t0 = time.perf_counter()
            try:
                image = (
                    pixels[i] if pixels is not None and pixels[i] is not None else open_stored_image(out["image"][i])
                )
                boxes = self.engine.read(image)
            except Exception as err:  # one image must not stop the batch: rejected with the engine's message
                out["reject"][i], out["detail"][i] = "ocr_error", f"{self.name}: {type(err).__name__}: {err}"
                out["image"][i] = b""
                continue
            out["ocr"][i] = json.dumps([b.to_dict() for b in boxes], ensure_ascii=False)
            seconds = json.loads(out["seconds"][i])
            seconds["ocr"] = round(time.perf_counter() - t0, 6)
            out["seconds"][i] = json.dumps(seconds)
        return out


class PrepPipeline:
    """All stages after reading, built once per worker: ``pipeline(batch) -> batch``.

    Args:
        config: The job.
        keep_pixels: Pass decoded images from the decode stage to OCR and captioning in memory (in-process
            runs) instead of decoding the stored bytes again.
    """

    def __init__(self, config: PrepConfig, keep_pixels: bool = True) -> None:
        self.decode = DecodeStage(config.decode, keep_pixels=keep_pixels)
        self.ocr = OCRPrepStage(config.engine, config.languages, config.engine_options)
        self.filter = FilterStage(config.filters)
        self.caption = CaptionStage(config.captioner, config.training_caption)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        for stage in (self.decode, self.ocr, self.filter, self.caption):
            batch = stage(batch)
        batch.pop("pixels", None)
        return batch


def rows_to_batch(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


def batch_to_rows(batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
    keys = list(batch)
    for i in range(len(batch["key"]) if batch else 0):
        yield {k: batch[k][i] for k in keys}


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def shard_info(config: PrepConfig, task: ShardTask) -> dict[str, Any]:
    return {
        "input": task.describe(),
        "fingerprint": task.fingerprint(),
        "engine": config.engine_name,
        "languages": list(config.languages),
        "captioner": config.captioner.model,
        "runner": config.runner,
    }


def _root(task: ShardTask) -> str | None:
    return task.root if task.kind == "folder" else None


def process_shard(
    config: PrepConfig, task: ShardTask, pipeline: PrepPipeline, on_batch: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Runs one shard through the pipeline and publishes it; returns its stats.

    On any error the unfinished shard is removed (no stats are written), so a rerun redoes it.
    """
    writer = ShardWriter(config.output, task.shard, shard_info(config, task), root=_root(task))
    try:
        for chunk in _chunks(read_shard(task), config.batch_size):
            batch = pipeline(rows_to_batch([sample.to_row() for sample in chunk]))
            for row in batch_to_rows(batch):
                writer.add(row)
            if on_batch is not None:
                on_batch(len(chunk))
        return writer.close()
    except BaseException:
        writer.abort()
        raise


class _Progress:
    """tqdm over images (total known for folders and lists), with shard counts in the postfix."""

    def __init__(self, config: PrepConfig, tasks: list[ShardTask]) -> None:
        from tqdm.auto import tqdm

        expected = [t.expected for t in tasks]
        total = sum(e for e in expected if e is not None) if all(e is not None for e in expected) else None
        self.bar = tqdm(
            total=total,
            unit="img",
            desc=f"prep ({config.runner}, {config.workers} worker(s))",
            disable=not config.progress,
        )
        self.shards = len(tasks)
        self.done = self.written = self.rejected = 0

    def update(self, n: int) -> None:
        self.bar.update(n)

    def shard(self, stats: dict[str, Any]) -> None:
        self.done += 1
        self.written += stats["written"]
        self.rejected += stats["rejected_total"]
        self.bar.set_postfix(shards=f"{self.done}/{self.shards}", written=self.written, rejected=self.rejected)

    def close(self) -> None:
        self.bar.close()
