"""The prep job: stages, the per-shard loop, and two interchangeable runners behind :func:`run_prep`.

Pipeline (each stage a callable class, ``batch dict -> batch dict``, the shape Ray Data's ``map_batches`` wants):

1. read (:func:`data_prep.readers.read_shard`) -- raw bytes, source caption, stable key;
2. :class:`data_prep.readers.DecodeStage` -- validated image or a rejection reason;
3. :class:`OCRPrepStage` -- the OCR engine of :mod:`textgen.core.ocr`, loaded once per worker;
4. :class:`data_prep.filters.FilterStage` -- box and sample filters;
5. :class:`data_prep.captions.CaptionStage` -- source caption or captioner, training caption;
6. :class:`data_prep.writer.ShardWriter` -- the shard, its stats and its rejected list.

Runners:

* ``local``: one task per shard on a ``multiprocessing`` pool of ``workers`` processes (spawned, one OCR
  engine each; ``workers=1`` runs in this process), with a progress bar.
* ``ray``: a Ray Data dataset of shard tasks; read + decode run as tasks fused into one operator, OCR (and a
  captioning model) as actor pools (``compute=ActorPoolStrategy(size=workers)``, fractional CPUs per actor),
  filter + caption templates as tasks; the driver writes the shards (order preserved, so each shard's rows
  arrive together) in exactly the local runner's format.

Both are resumable: shards whose stats exist are skipped, partial ones are redone from scratch.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue as queue_module
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data_prep.captions import CaptionerOptions, CaptionStage, TrainingCaptionOptions
from data_prep.filters import FilterOptions, FilterStage
from data_prep.readers import (
    INPUT_FORMATS,
    DecodeOptions,
    DecodeStage,
    ShardTask,
    open_stored_image,
    plan_shards,
    read_shard,
)
from data_prep.writer import ShardWriter, merge_rejected, read_stats, remove_partials, shard_done, summarize

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


# -------------------------------------------------------------------------------------------- local runner
_WORKER: dict[str, Any] = {}


def _init_worker(config: PrepConfig, progress_queue: Any) -> None:
    _die_with_parent()
    _WORKER.clear()
    _WORKER.update(config=config, queue=progress_queue, pipeline=None)


def _die_with_parent() -> None:
    """A pool worker ends when its parent does (kill -9 included): no orphan keeps writing shards.

    Linux: ``PR_SET_PDEATHSIG``; everywhere: a thread that exits the process once the parent is gone.
    """
    import threading

    parent = os.getppid()
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


class OutputLocked(ValueError):
    """Another prep is writing into the same output folder."""


def _lock_output(out: Path) -> Any:
    """Takes ``OUT/.prep.lock`` (an OS lock, released when the process ends, even by kill -9).

    Raises:
        OutputLocked: another live prep holds it, naming its pid.
    """
    import fcntl

    path = out / LOCK_FILE
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        raise OutputLocked(
            f"{out}: another prep (pid {owner}) is writing to this folder; wait for it to finish or stop it"
        ) from err
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _work(task: ShardTask) -> tuple[str, str, Any]:
    """Pool task: one shard. Returns ``("ok", shard, stats)`` or ``("error", shard, message)``, never raises."""
    config: PrepConfig = _WORKER["config"]
    try:
        if _WORKER["pipeline"] is None:
            _WORKER["pipeline"] = PrepPipeline(config)
        stats = process_shard(config, task, _WORKER["pipeline"], on_batch=_WORKER["queue"].put)
        return ("ok", task.shard, stats)
    except Exception as err:
        return ("error", task.shard, f"{type(err).__name__}: {err}")


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


def run_local(config: PrepConfig, tasks: list[ShardTask]) -> list[tuple[str, str]]:
    """Runs the shard tasks on a local process pool; returns the failed shards as ``(shard, message)``."""
    progress = _Progress(config, tasks)
    failures: list[tuple[str, str]] = []
    try:
        if config.workers == 1 or len(tasks) == 1:
            pipeline = PrepPipeline(config)
            for task in tasks:
                try:
                    progress.shard(process_shard(config, task, pipeline, on_batch=progress.update))
                except Exception as err:  # this shard stays without stats; the next run redoes it
                    failures.append((task.shard, f"{type(err).__name__}: {err}"))
            return failures
        # spawn, not fork: the parent may hold threads (tqdm, onnxruntime, torch) that a fork would copy locked
        ctx = mp.get_context("spawn")
        progress_queue = ctx.Queue()
        workers = min(config.workers, len(tasks))
        with ctx.Pool(workers, initializer=_init_worker, initargs=(config, progress_queue)) as pool:
            results = pool.imap_unordered(_work, tasks)
            remaining = len(tasks)
            while remaining:
                try:
                    status, shard, payload = results.next(timeout=0.2)
                except mp.TimeoutError:
                    _drain(progress_queue, progress)
                    continue
                remaining -= 1
                _drain(progress_queue, progress)
                if status == "ok":
                    progress.shard(payload)
                else:
                    failures.append((shard, payload))
        return failures
    finally:
        progress.close()


def _drain(progress_queue: Any, progress: _Progress) -> None:
    while True:
        try:
            progress.update(progress_queue.get_nowait())
        except queue_module.Empty:
            return


# ---------------------------------------------------------------------------------------------- ray runner
def _ray_read(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for sample in read_shard(ShardTask.from_json(row["task"])):
        yield sample.to_row()


def _apply(batch: dict[str, Any], stage: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    return stage(batch)


def _ray_cpus_per_worker(config: PrepConfig, cluster_cpus: float) -> float:
    if config.ray_cpus_per_worker is not None:
        return float(config.ray_cpus_per_worker)
    # One CPU per OCR actor when the cluster has room, else a share that leaves one CPU for the read/decode/
    # filter tasks: on a 2-CPU machine two actors at 1 CPU each would starve them and the job would hang.
    return max(0.1, min(1.0, (cluster_cpus - 1.0) / config.workers))


def run_ray(config: PrepConfig, tasks: list[ShardTask]) -> list[tuple[str, str]]:
    """Runs the shard tasks on Ray Data; the driver writes the shards. Returns failed shards (none or all)."""
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ImportError(f"the ray runner needs Ray Data ({err}); pip install 'textgen[ray]'") from err
    started = False
    if not ray.is_initialized():
        ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        return _run_ray(config, tasks, ray)
    finally:
        if started:
            ray.shutdown()


def _run_ray(config: PrepConfig, tasks: list[ShardTask], ray: Any) -> list[tuple[str, str]]:
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # each shard's rows reach the driver together, in order
    ctx.enable_progress_bars = False  # our own bar counts images
    cpus = _ray_cpus_per_worker(config, float(ray.cluster_resources().get("CPU", 1.0)))
    light = min(0.5, cpus)  # read/decode/filter tasks are cheap next to OCR
    bs = config.batch_size

    ds = ray.data.from_items([{"task": t.to_json()} for t in tasks], override_num_blocks=len(tasks))
    ds = ds.flat_map(_ray_read, num_cpus=light)
    ds = ds.map_batches(_apply, fn_kwargs={"stage": DecodeStage(config.decode)}, batch_size=bs, num_cpus=light)
    ds = ds.map_batches(
        OCRPrepStage,
        fn_constructor_kwargs={
            "engine": config.engine,
            "languages": tuple(config.languages),
            "engine_options": config.engine_options,
        },
        batch_size=bs,
        compute=ray.data.ActorPoolStrategy(size=config.workers),
        num_cpus=cpus,
    )
    ds = ds.map_batches(_apply, fn_kwargs={"stage": FilterStage(config.filters)}, batch_size=bs, num_cpus=light)
    caption_kwargs = {"captioner": config.captioner, "training": config.training_caption}
    if config.captioner.model:
        ds = ds.map_batches(
            CaptionStage,
            fn_constructor_kwargs=caption_kwargs,
            batch_size=config.captioner.batch_size,
            compute=ray.data.ActorPoolStrategy(size=config.workers),
            num_cpus=cpus,
            num_gpus=1 if config.captioner.device.startswith("cuda") else 0,
        )
    else:  # templates only: no model to hold, a task is enough
        ds = ds.map_batches(_apply, fn_kwargs={"stage": CaptionStage(**caption_kwargs)}, batch_size=bs, num_cpus=light)

    progress = _Progress(config, tasks)
    by_shard = {t.shard: t for t in tasks}
    seen: set[str] = set()
    writer: ShardWriter | None = None
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            n = 0
            for row in batch_to_rows(batch):
                shard = str(row["shard"])
                if writer is None or writer.shard != shard:
                    if writer is not None:
                        progress.shard(writer.close())
                    if shard in seen:
                        raise RuntimeError(f"ray runner: rows of shard {shard} arrived out of order")
                    seen.add(shard)
                    task = by_shard[shard]
                    writer = ShardWriter(config.output, shard, shard_info(config, task), root=_root(task))
                writer.add(row)
                n += 1
            progress.update(n)
        if writer is not None:
            progress.shard(writer.close())
            writer = None
        for task in tasks:  # inputs that yielded no rows at all (an empty tar) still get their (empty) shard
            if task.shard not in seen:
                progress.shard(ShardWriter(config.output, task.shard, shard_info(config, task)).close())
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        progress.close()
    return []


# ----------------------------------------------------------------------------------------------- run_prep
def _check_config(config: PrepConfig, out: Path) -> None:
    """Refuses to resume an output folder that was written with different settings."""
    path = out / CONFIG_FILE
    current = config.to_dict()
    relevant = {k: v for k, v in current.items() if k not in _RUN_ONLY_FIELDS and k not in ("input", "output")}
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ValueError(f"{path}: unreadable ({err}); delete it or use --overwrite") from err
        before = {k: v for k, v in previous.items() if k not in _RUN_ONLY_FIELDS and k not in ("input", "output")}
        changed = sorted(k for k in set(relevant) | set(before) if relevant.get(k) != before.get(k))
        if changed:
            raise ValueError(
                f"{out}: was written with different settings ({', '.join(changed)} changed); "
                "resume with the same settings, use another output folder, or pass --overwrite"
            )
    tmp = out / f".{CONFIG_FILE}.partial"
    tmp.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _clear_output(out: Path) -> None:
    for pattern in ("*.tar", "*_stats.json", "*_rejected.jsonl", "rejected.jsonl", CONFIG_FILE, SUMMARY_FILE):
        for path in out.glob(pattern):
            if path.is_file():
                path.unlink()
    remove_partials(out)


def run_prep(config: PrepConfig) -> dict[str, Any]:
    """Runs a prep job (resumable) and returns its summary (also written to ``OUT/summary.json``).

    Args:
        config: The job.

    Returns:
        Totals over all finished shards (inputs, written, rejected by reason, dropped boxes by reason, stage
        seconds), plus this run's shards written/skipped/failed, seconds and images per second.

    Raises:
        ValueError: bad settings, or an output folder written with other settings / from other input.
        FileNotFoundError: the input does not exist or holds nothing to read.
        RuntimeError: every pending shard failed (e.g. the OCR engine cannot be built), with the first error.
    """
    config = config.validate()
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    tasks = plan_shards(
        config.input, config.shard_size, config.input_format, config.path_column, config.caption_column
    )
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock_output(out)
    try:
        return _run_locked(config, out, tasks)
    finally:
        lock.close()


def _run_locked(config: PrepConfig, out: Path, tasks: list[ShardTask]) -> dict[str, Any]:
    if config.overwrite:
        _clear_output(out)
    _check_config(config, out)
    remove_partials(out)  # a killed run's half-written files; their shards have no stats and are redone

    pending = []
    for task in tasks:
        if shard_done(out, task.shard):
            stats = read_stats(out, task.shard)
            if stats.get("fingerprint") not in (None, task.fingerprint()):
                raise ValueError(
                    f"{out}: shard {task.shard} was written from other input ({stats.get('input')}); the input "
                    "changed since the first run: use another output folder or pass --overwrite"
                )
        else:
            pending.append(task)

    t0 = time.perf_counter()
    failures: list[tuple[str, str]] = []
    if pending:
        run = run_ray if config.runner == "ray" else run_local
        failures = run(config, pending)
    seconds = time.perf_counter() - t0
    merge_rejected(out)
    summary = summarize(out)
    done_now = [t for t in pending if shard_done(out, t.shard)]
    images_now = sum(read_stats(out, t.shard)["inputs"] for t in done_now)
    summary.update(
        shards_total=len(tasks),
        shards_written=len(done_now),
        shards_skipped=len(tasks) - len(pending),
        shards_failed=[{"shard": s, "error": e} for s, e in failures],
        seconds=round(seconds, 3),
        images_per_second=round(images_now / seconds, 3) if seconds > 0 and images_now else 0.0,
        engine=config.engine_name,
        runner=config.runner,
        workers=config.workers,
    )
    tmp = out / f".{SUMMARY_FILE}.partial"
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / SUMMARY_FILE)
    if failures and len(failures) == len(pending):
        shard, error = failures[0]
        raise RuntimeError(f"all {len(pending)} pending shard(s) failed; shard {shard}: {error}")
    return summary
