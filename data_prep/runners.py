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
from pathlib import Path
from typing import Any

from data_prep.readers import ShardTask, plan_shards
from data_prep.stages import (  # noqa: F401  (the runners' public names)
    _RUN_ONLY_FIELDS,
    CONFIG_FILE,
    LOCK_FILE,
    RUNNERS,
    SUMMARY_FILE,
    OCRPrepStage,
    PrepConfig,
    PrepPipeline,
    _Progress,
    batch_to_rows,
    process_shard,
    rows_to_batch,
    shard_info,
)
from data_prep.writer import merge_rejected, read_stats, remove_partials, shard_done, summarize

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


def run_ray(config: PrepConfig, tasks: list[ShardTask]) -> list[tuple[str, str]]:
    """Runs the shard tasks on Ray (``data_prep.runners_ray``); returns the failed shards as ``(shard, message)``."""
    from data_prep.runners_ray import run_ray as _run

    return _run(config, tasks)


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
