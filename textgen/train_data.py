"""Training data for the glyph-conditioned diffusion trainer: triple shards -> batches.

Two ways to feed the trainer, one sample format:

* :class:`GlyphTripleStream` streams shards (any size) through DataLoader workers, decoding and rendering on the
  fly; its order is a pure function of the seed, so a resumed run continues on the very batches it would have seen.
* :class:`MemoryTriples` decodes a small set (tens of thousands of 128x128 samples) once into tensors, on the
  training device, and draws each step's batch by index from a generator seeded with ``(seed, step)``: no worker
  processes, no per-step decoding (what a GPU needs to stay busy with a small model), and exact resumes.

Every sample: ``pixel_values`` uint8 (3, R, R); ``conditioning`` uint8 (R, R), the glyph, black text on white;
``input_ids``; ``caption``; and for the text-perceptual loss ``boxes`` (K, 4) pixel boxes of the text lines,
``label_lengths`` (K,) and ``labels`` (K, MAX_LABEL) in :mod:`textgen.recognizer`'s charset (length 0: a box the
recognizer cannot be asked to read, or padding).

The glyph comes from the layout (``glyph_source="render"``: the renderer's fit of each box, what inference sees)
or from the sample's stored ink (``"mask"``: ``{key}.mask.png`` that ``textgen synth`` writes, the text exactly as
drawn, so the condition lies on the target's strokes).
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GLYPH_SOURCES = ("render", "mask")
MAX_BOXES = 4  # text lines per sample carried for the text-perceptual loss (more are left out of it)
MASK_EXT = "mask.png"
DAMAGED_SHARDS: dict[str, int] = {}  # shard -> times it was found damaged while streaming (this process)


def sample_tensors(image, glyph, caption: str, boxes, tokenizer) -> dict[str, Any]:
    """The tensors of one sample (see the module docstring), from the transformed image, glyph and boxes."""
    import numpy as np
    import torch

    from textgen.recognizer import MAX_LABEL, encode_text

    ids = tokenizer(
        caption, max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
    ).input_ids[0]
    box_tensor = torch.zeros(MAX_BOXES, 4)
    lengths = torch.zeros(MAX_BOXES, dtype=torch.long)
    labels = torch.zeros(MAX_BOXES, MAX_LABEL, dtype=torch.long)
    res = image.size[0]
    for k, (text, angle, (x0, y0, x1, y1)) in enumerate(boxes[:MAX_BOXES]):
        label = encode_text(text)
        inside = x0 >= 0 and y0 >= 0 and x1 <= res and y1 <= res and x1 > x0 and y1 > y0
        box_tensor[k] = torch.tensor([x0, y0, x1, y1], dtype=torch.float32)
        if label is not None and not angle and inside:  # rotated or cropped lines are not read by the loss
            lengths[k] = len(label)
            labels[k, : len(label)] = torch.tensor(label)
    return {
        "pixel_values": torch.from_numpy(np.asarray(image).transpose(2, 0, 1).copy()),
        "conditioning": torch.from_numpy(np.asarray(glyph).copy()),
        "input_ids": ids,
        "caption": caption,
        "boxes": box_tensor,
        "label_lengths": lengths,
        "labels": labels,
    }


def _iter_raw(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yields ``(key, {ext: bytes})`` of the triples of a shard in stored order, without decoding anything.

    A damaged or truncated shard (also one cut at a block boundary, which reads as a shorter valid tar) stops
    here with a logged warning naming it; the samples before the damage were yielded. Each such shard is counted
    in :data:`DAMAGED_SHARDS`.
    """
    from textgen.core.shards import ShardDamaged, iter_tar

    try:
        for key, files in iter_tar(path):
            if "json" in files:
                yield key, files
    except ShardDamaged as err:
        DAMAGED_SHARDS[str(path)] = DAMAGED_SHARDS.get(str(path), 0) + 1
        logger.warning("damaged training shard, the rest of it is skipped: %s", err)


def _shuffled(items: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Streaming shuffle: a buffer of ``size`` items, each output drawn uniformly from it."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        index = rng.randrange(size)
        yield buffer[index]
        buffer[index] = item
    rng.shuffle(buffer)  # only reached by finite streams
    yield from buffer


class GlyphTripleStream:
    """An infinite, shuffled stream of training samples from triple shards (a torch ``IterableDataset``).

    Every sample is ``{"pixel_values": uint8 (3, R, R), "conditioning": uint8 (R, R) glyph, black text on white,
    "input_ids": (L,), "caption": str}``. The stream is a pure function of ``seed``, the process rank and the
    worker layout, so a resumed run skips exactly the micro-batches it consumed (``start_batches``) and continues
    with the ones the uninterrupted run would have seen (given the same batch size, workers and processes).

    Data is split over processes and DataLoader workers by shard when there are at least as many shards as
    ``processes x workers``, else by sample. Each epoch visits the shards in a new seeded order.

    Args:
        shards: Tar shard paths.
        resolution: Output side in pixels; images are scaled (short side) and centre-cropped, and the glyph is
            rendered at the scaled size and cropped the same way, so boxes and ink stay aligned.
        tokenizer: The text encoder's tokenizer (captions are padded to its ``model_max_length``).
        caption_dropout: Probability that a sample's caption is replaced by ``""``.
        shuffle_buffer: Samples in each worker's shuffle buffer.
        seed: Stream seed.
        rank: This process's index.
        world_size: Number of processes.
        batch_size: Micro-batch size (to compute how far each worker must skip when resuming).
        start_batches: Micro-batches this process already consumed.
        glyph_source: ``"render"`` (from the layout) or ``"mask"`` (the sample's stored ink; samples without one
            are skipped and counted).
    """

    def __init__(
        self,
        shards: Sequence[Path],
        resolution: int,
        tokenizer: Any,
        caption_dropout: float = 0.0,
        shuffle_buffer: int = 1000,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        batch_size: int = 1,
        start_batches: int = 0,
        glyph_source: str = "render",
    ):
        if glyph_source not in GLYPH_SOURCES:
            raise ValueError(f"glyph_source must be one of {GLYPH_SOURCES}, got {glyph_source!r}")
        self.glyph_source = glyph_source
        self.shards = [Path(p) for p in shards]
        self.resolution = int(resolution)
        self.tokenizer = tokenizer
        self.caption_dropout = float(caption_dropout)
        self.shuffle_buffer = int(shuffle_buffer)
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.batch_size = int(batch_size)
        self.start_batches = int(start_batches)
        self.skipped_bad = 0

    # ------------------------------------------------------------------------------------- raw stream
    def raw_stream(self, slot: int, slots: int) -> Iterator[tuple[str, str, dict[str, bytes]]]:
        """Undecoded samples ``(shard, key, files)`` of data slot ``slot`` of ``slots``, epoch after epoch."""
        n = len(self.shards)
        epoch = 0
        while True:
            order = list(range(n))
            random.Random(f"{self.seed}:epoch:{epoch}").shuffle(order)
            by_shard = n >= slots
            mine = order[slot::slots] if by_shard else order
            count = index = 0
            for shard_index in mine:
                shard = self.shards[shard_index]
                for key, files in _iter_raw(shard):
                    index += 1
                    if not by_shard and (index - 1) % slots != slot:
                        continue
                    count += 1
                    yield shard.name, key, files
            if count == 0:
                names = ", ".join(str(self.shards[i]) for i in mine) or "(none)"
                raise ValueError(
                    f"no samples for data slot {slot} of {slots} (processes x DataLoader workers) in {names}: "
                    "the shards are empty or too few samples for that many workers"
                )
            epoch += 1

    # --------------------------------------------------------------------------------------- decoding
    def transform(self, image, layout, mask=None):
        """Scales the short side to the resolution and centre-crops; the glyph (rendered or given) likewise.

        Args:
            image: The RGB image.
            layout: Its layout.
            mask: The stored ink (``"L"``, white text on black, the image's size), or ``None`` to render the glyph.

        Returns:
            ``(image, glyph, boxes)``: RGB image and ``"L"`` glyph (black text on white), both ``resolution``
            square, and the layout's boxes in pixels of the output.
        """
        from PIL import Image, ImageOps

        from textgen.core.glyph import GlyphOptions, render_glyph

        res = self.resolution
        width, height = image.size
        scale = res / min(width, height)
        size = (max(res, round(width * scale)), max(res, round(height * scale)))
        if image.size != size:
            image = image.resize(size, Image.Resampling.BICUBIC)
        if mask is not None:
            if mask.size != (width, height):
                raise ValueError(f"stored mask is {mask.size[0]}x{mask.size[1]}, the image {width}x{height}")
            mask = mask if mask.size == size else mask.resize(size, Image.Resampling.BILINEAR)
            glyph = ImageOps.invert(mask.convert("L"))
        else:
            glyph = render_glyph(layout, size=size, options=GlyphOptions(on_missing="warn")).convert("L")
        left, top = (size[0] - res) // 2, (size[1] - res) // 2
        if size != (res, res):
            box = (left, top, left + res, top + res)
            image, glyph = image.crop(box), glyph.crop(box)
        boxes = []
        for b in layout.boxes:
            x0, y0, x1, y1 = b.to_pixels(*size)
            boxes.append((b.text, b.angle, (x0 - left, y0 - top, x1 - left, y1 - top)))
        return image, glyph, boxes

    def decode(self, shard: str, key: str, files: dict[str, bytes], dropped: bool) -> dict[str, Any]:
        """One training sample from raw files. Raises ValueError naming the shard and key when malformed."""
        from PIL import Image

        from textgen.core.shards import Triple, decode_sample

        where = f"{shard}: {key}"
        record, image_bytes = decode_sample(files, where=where)
        image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
        caption = "" if dropped else Triple(record=record, image=image).caption
        mask = None
        if self.glyph_source == "mask":
            if MASK_EXT not in files:
                raise ValueError(f"{where}: no {MASK_EXT} (the stored ink --glyph_source mask needs: textgen synth)")
            mask = Image.open(io.BytesIO(files[MASK_EXT]))
        try:
            image, glyph, boxes = self.transform(image, record.layout, mask)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        return sample_tensors(image, glyph, caption, boxes, self.tokenizer)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import torch

        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # DataLoader takes batch b from worker b % workers; after a resume the first batch comes from worker 0,
        # so rotate which data slot each worker serves to keep the uninterrupted order.
        logical = (worker + self.start_batches) % workers
        consumed = len(range(logical, self.start_batches, workers))
        skip = consumed * self.batch_size
        slot, slots = self.rank * workers + logical, self.world_size * workers
        shuffle_rng = random.Random(f"{self.seed}:shuffle:{slot}:{slots}")
        stream = _shuffled(self.raw_stream(slot, slots), self.shuffle_buffer, shuffle_rng)
        for ordinal, (shard, key, files) in enumerate(stream):
            if ordinal < skip:
                continue
            dropped = random.Random(f"{self.seed}:caption:{slot}:{ordinal}").random() < self.caption_dropout
            try:
                yield self.decode(shard, key, files, dropped)
            except (ValueError, OSError) as err:  # one bad sample must not end a long run: skip and say why
                self.skipped_bad += 1
                logger.warning("skipping sample %s: %s (%d skipped so far)", key, err, self.skipped_bad)


def _torch_iterable(stream: GlyphTripleStream):
    """Wraps the stream in a ``torch.utils.data.IterableDataset`` (torch imported lazily)."""
    import torch

    class _Dataset(torch.utils.data.IterableDataset):
        def __init__(self, inner: GlyphTripleStream):
            super().__init__()
            self.inner = inner

        def __iter__(self):
            return iter(self.inner)

    return _Dataset(stream)


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)  # decoding and rendering are single-threaded; don't oversubscribe the cores


def check_shards(paths: Sequence[Path]) -> int:
    """Reads the first sample of the shards to fail early with a clear message; returns the shard count.

    Raises:
        ValueError: no shard holds a sample, or the first sample is malformed.
    """
    from textgen.core.shards import iter_shard

    for path in paths:
        for _ in iter_shard(path):  # a damaged shard raises ShardDamaged, a ValueError naming it
            return len(paths)
    names = str(paths[0]) if len(paths) == 1 else f"{paths[0]} ... {paths[-1]} ({len(paths)} shards)"
    raise ValueError(f"{names}: no samples in the training shards (empty tars?)")


def check_captions(paths: Sequence[Path], tokenizer: Any, n: int = 64) -> dict[str, int]:
    """Tokenizes the first ``n`` training captions and warns when the tokenizer would cut them.

    Training captions put the words to paint at the end (``... that reads "OPEN"``), so a truncated caption
    silently loses exactly what the model must learn (a character-level tokenizer needs ~1 token per character).

    Returns:
        ``{"checked", "truncated", "longest", "max_length"}``.
    """
    from textgen.core.shards import iter_triples

    lengths = []
    for triple in iter_triples(paths):
        lengths.append(len(tokenizer(triple.caption, truncation=False).input_ids))
        if len(lengths) >= n:
            break
    limit = int(tokenizer.model_max_length)
    out = {"checked": len(lengths), "truncated": sum(k > limit for k in lengths), "longest": max(lengths, default=0)}
    out["max_length"] = limit
    if out["truncated"]:
        logger.warning(
            "%d of the first %d training captions exceed the tokenizer's %d tokens (longest %d) and are cut, words "
            "included: use a text encoder with more positions (StackConfig max_text_length >= %d)",
            out["truncated"], out["checked"], limit, out["longest"], out["longest"],
        )  # fmt: skip
    return out


# ============================================================================================ in memory
_TENSOR_KEYS = ("pixel_values", "conditioning", "input_ids", "boxes", "label_lengths", "labels")


def _decode_shard(job: tuple[Path, int, Any, str]) -> tuple[dict[str, Any], list[str], int]:
    """Decodes every sample of one shard (a worker process's unit of work)."""
    import torch

    path, resolution, tokenizer, glyph_source = job
    stream = GlyphTripleStream([path], resolution=resolution, tokenizer=tokenizer, glyph_source=glyph_source)
    rows, captions, skipped = [], [], 0
    for key, files in _iter_raw(path):
        try:
            sample = stream.decode(path.name, key, files, dropped=False)
        except (ValueError, OSError) as err:
            skipped += 1
            logger.warning("skipping sample %s: %s", key, err)
            continue
        rows.append(sample)
        captions.append(sample["caption"])
    if not rows:
        return {}, [], skipped
    return {k: torch.stack([r[k] for r in rows]) for k in _TENSOR_KEYS}, captions, skipped


def _cache_paths(cache: str | Path, shards: Sequence[Path], resolution: int, tokenizer: Any, glyph_source: str):
    """``(tensors.safetensors, meta.json)`` of a decoded set in the cache folder, named by what made it."""
    import hashlib

    stats = [(str(Path(p).resolve()), Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in shards]
    key = json.dumps([stats, int(resolution), glyph_source, int(tokenizer.model_max_length), len(tokenizer)])
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    folder = Path(cache)
    return folder / f"triples-{digest}.safetensors", folder / f"triples-{digest}.json"


class MemoryTriples:
    """A training set decoded once into tensors; each step's batch is drawn by index (see the module docstring).

    Args:
        tensors: ``{name: (N, ...)}`` for every key of a sample but the caption.
        captions: The N captions.
        empty_ids: Token ids of the empty prompt (caption dropout).
        skipped: Samples that could not be decoded (recorded, not silently lost).
    """

    def __init__(self, tensors: dict[str, Any], captions: list[str], empty_ids: Any, skipped: int = 0):
        self.tensors = tensors
        self.captions = captions
        self.empty_ids = empty_ids
        self.skipped = skipped

    def __len__(self) -> int:
        return len(self.captions)

    @classmethod
    def build(
        cls,
        shards: Sequence[Path],
        resolution: int,
        tokenizer: Any,
        glyph_source: str = "render",
        workers: int = 1,
        device: Any = "cpu",
        cache: str | Path | None = None,
    ) -> MemoryTriples:
        """Decodes every sample of ``shards`` (in parallel over shards with ``workers`` processes).

        Args:
            shards: Tar shard paths.
            resolution: Training side in pixels.
            tokenizer: The text encoder's tokenizer.
            glyph_source: ``render`` or ``mask`` (see the module docstring).
            workers: Decoding processes.
            device: Where the tensors live.
            cache: A folder for the decoded tensors (safetensors), keyed by the shards' paths, sizes and times,
                the resolution, glyph source and tokenizer: runs of a study on the same data decode it once.

        Raises:
            ValueError: no sample could be decoded.
        """
        import torch

        cached = _cache_paths(cache, shards, resolution, tokenizer, glyph_source) if cache else None
        if cached is not None and cached[0].is_file() and cached[1].is_file():
            from safetensors.torch import load_file

            tensors = {k: v.to(device) for k, v in load_file(str(cached[0])).items()}
            meta = json.loads(cached[1].read_text(encoding="utf-8"))
            logger.info("decoded set loaded from the cache %s", cached[0])
            return cls(tensors, meta["captions"], tensors.pop("empty_ids"), skipped=meta["skipped"])
        jobs = [(Path(p), int(resolution), tokenizer, glyph_source) for p in shards]
        if workers > 1 and len(jobs) > 1:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
                parts = pool.map(_decode_shard, jobs)
        else:
            parts = [_decode_shard(job) for job in jobs]
        parts_with_rows = [p for p in parts if p[1]]
        skipped = sum(p[2] for p in parts)
        if not parts_with_rows:
            names = f"{shards[0]}" + (f" ... ({len(shards)} shards)" if len(shards) > 1 else "")
            raise ValueError(f"{names}: no training sample could be decoded ({skipped} skipped)")
        tensors = {k: torch.cat([p[0][k] for p in parts_with_rows]).to(device) for k in _TENSOR_KEYS}
        captions = [c for p in parts_with_rows for c in p[1]]
        empty = tokenizer(
            "", max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
        ).input_ids[0]
        if skipped:
            logger.warning("%d samples of %d could not be decoded and are left out", skipped, skipped + len(captions))
        if cached is not None:
            from safetensors.torch import save_file

            cached[0].parent.mkdir(parents=True, exist_ok=True)
            tmp = cached[0].with_suffix(f".{os.getpid()}.partial")
            save_file({**{k: v.cpu().contiguous() for k, v in tensors.items()}, "empty_ids": empty}, str(tmp))
            os.replace(tmp, cached[0])
            meta_tmp = cached[1].with_suffix(f".{os.getpid()}.partial")
            meta_tmp.write_text(json.dumps({"captions": captions, "skipped": skipped}), encoding="utf-8")
            os.replace(meta_tmp, cached[1])
        return cls(tensors, captions, empty.to(device), skipped=skipped)

    def batch(self, step: int, batch_size: int, seed: int, caption_dropout: float = 0.0) -> dict[str, Any]:
        """The batch of optimizer step ``step``: a pure function of ``(seed, step)``, so resumes are exact."""
        import torch

        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
        index = torch.randint(len(self), (batch_size,), generator=generator)
        dropped = torch.rand(batch_size, generator=generator) < caption_dropout
        device_index = index.to(self.tensors["pixel_values"].device)
        out = {k: v[device_index] for k, v in self.tensors.items()}
        if dropped.any():
            out["input_ids"][dropped.to(device_index.device)] = self.empty_ids
        out["caption"] = ["" if d else self.captions[i] for i, d in zip(index.tolist(), dropped.tolist())]
        return out
