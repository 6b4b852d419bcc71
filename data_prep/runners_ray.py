"""The Ray runner of the data stage: the same shards and stages as the local runner, on a Ray cluster (Ray Data)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from data_prep.captions import CaptionStage
from data_prep.decode import DecodeStage
from data_prep.filters import FilterStage
from data_prep.readers import ShardTask, read_shard
from data_prep.stages import OCRPrepStage, PrepConfig, _Progress, _root, batch_to_rows, shard_info
from data_prep.writer import ShardWriter


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
