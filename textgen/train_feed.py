"""Feeding the trainer: the shard list, the streaming DataLoader, the in-memory sets and each step's batch."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from textgen.train_data import GlyphTripleStream, MemoryTriples, _torch_iterable, _worker_init

logger = logging.getLogger("textgen.train_controlnet")


class DataMixin:
    """The data side of :class:`textgen.train_controlnet.ControlNetTrainer` (``self.args``, ``self.accelerator``,
    ``self.models``, ``self.resolution``, ``self.data_seed`` and ``self.shard_list`` come from the trainer)."""

    def _shards(self) -> list[Path]:
        from textgen.core.shards import shard_paths

        return shard_paths(self.args.data.train_shards)

    def _memory_sets(self) -> dict[str, MemoryTriples]:
        """The in-memory training set(s): ``train``, and ``curriculum`` when a first stage is given."""
        from textgen.core.shards import shard_paths

        data, acc = self.args.data, self.accelerator
        if acc.num_processes > 1:
            raise ValueError("--in_memory trains on one process; stream the shards for several")
        sets = {}
        sources = {"train": self.shard_list}
        if data.curriculum_shards:
            sources["curriculum"] = shard_paths(data.curriculum_shards)
        for name, paths in sources.items():
            t0 = time.perf_counter()
            sets[name] = MemoryTriples.build(
                paths,
                resolution=self.resolution,
                tokenizer=self.models.tokenizer,
                glyph_source=data.glyph_source,
                workers=max(1, data.dataloader_num_workers),
                device=acc.device,
                cache=data.memory_cache,
            )
            logger.info("%s set: %d samples decoded into memory in %.1f s (%d skipped)", name, len(sets[name]),
                        time.perf_counter() - t0, sets[name].skipped)  # fmt: skip
        return sets

    def next_batch(self, micro_batch: int, data_iter) -> dict[str, Any]:
        """The micro-batch ``micro_batch`` of the run: from memory (by index) or from the stream."""
        if not self.memory:
            return next(data_iter)
        data, optim = self.args.data, self.args.optim
        step = micro_batch // optim.gradient_accumulation_steps
        name = "curriculum" if "curriculum" in self.memory and step < data.curriculum_steps else "train"
        return self.memory[name].batch(micro_batch, optim.train_batch_size, self.data_seed, data.caption_dropout)

    def _dataloader(self, start_batches: int):
        import torch

        data, optim, acc = self.args.data, self.args.optim, self.accelerator
        stream = GlyphTripleStream(
            self.shard_list,
            resolution=self.resolution,
            tokenizer=self.models.tokenizer,
            caption_dropout=data.caption_dropout,
            shuffle_buffer=data.shuffle_buffer,
            seed=self.data_seed,
            rank=acc.process_index,
            world_size=acc.num_processes,
            batch_size=optim.train_batch_size,
            start_batches=start_batches,
            glyph_source=data.glyph_source,
        )
        workers = data.dataloader_num_workers
        return torch.utils.data.DataLoader(
            _torch_iterable(stream),
            batch_size=optim.train_batch_size,
            num_workers=workers,
            worker_init_fn=_worker_init if workers else None,
            persistent_workers=workers > 0,
            pin_memory=acc.device.type == "cuda",
        )

    # ------------------------------------------------------------------------------------------- step
