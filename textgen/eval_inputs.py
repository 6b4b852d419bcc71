"""What an evaluation reads: samples with their intended texts, from folders (sidecars or a manifest) and prompt
sets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from textgen.core.layout import Layout, LayoutError
from textgen.eval_read import IMAGE_SUFFIXES, MANIFEST_NAME


# ------------------------------------------------------------------------------------------------- samples
@dataclass
class EvalSample:
    """One image to evaluate and what it should show.

    Args:
        name: Shown in the report (a file name, ``prompt0003_1``...).
        texts: The intended texts (the layout's, when a layout is given).
        layout: Where each text should be; without it, per-box metrics and the colour check are skipped.
        image: The image, or ``None`` to load ``path`` when evaluated.
        path: Image file (read when ``image`` is ``None``; shown in the report).
        prompt: The prompt (for the CLIP score and the report).
        text_color: Intended text colour for boxes whose layout names none (a palette name, CSS name or hex).
        background_color: Intended background colour, or several (any of them matches: striped backgrounds).
        glyph: The glyph image the generator was conditioned on, shown beside the image in the report.
    """

    name: str
    texts: list[str]
    layout: Layout | None = None
    image: Image.Image | None = None
    path: Path | None = None
    prompt: str | None = None
    text_color: str | None = None
    background_color: str | list[str] | None = None
    glyph: Image.Image | None = None

    def load_image(self) -> Image.Image:
        if self.image is not None:
            return self.image
        if self.path is None:
            raise ValueError(f"{self.name}: no image and no path")
        with Image.open(self.path) as im:
            im.load()
            return im.copy()


def _as_texts(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return list(value)
    raise ValueError(f"{where}: 'texts' must be a string or a list of strings, got {value!r}")


def sample_from_entry(entry: Mapping[str, Any], where: str, name: str, path: Path | None = None) -> EvalSample:
    """Builds a sample from a manifest line or a sidecar JSON.

    Accepted keys: ``texts`` (list or one string), ``layout`` (a textgen Layout dict), ``prompt`` or ``caption``,
    ``text_color``, ``background_color`` (string or list). A data-stage triple record (``textgen.core.shards``)
    works too: its ``layout``, ``caption`` and the synthetic generator's ``source.background.colors``.

    Raises:
        ValueError: naming ``where``: no intended text, texts that disagree with the layout, a malformed layout.
    """
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    layout = None
    if "boxes" in entry:  # a bare Layout JSON
        layout = Layout.from_dict(dict(entry), source=where)
        entry = {"prompt": entry.get("caption")}
    elif entry.get("layout") is not None:
        layout = Layout.from_dict(entry["layout"], source=f"{where}: layout")
    if layout is not None:
        try:
            layout.validate(check_fonts=False)
        except LayoutError as err:
            raise LayoutError(f"{where}: {err}") from err
    texts = _as_texts(entry["texts"], where) if entry.get("texts") is not None else None
    if (
        layout is not None
        and texts is not None
        and [" ".join(t.split()) for t in texts] != [" ".join(t.split()) for t in layout.texts]
    ):
        raise ValueError(f"{where}: 'texts' {texts} disagree with the layout's texts {layout.texts}")
    texts = layout.texts if layout is not None else texts
    if not texts or not any(t.strip() for t in texts):
        raise ValueError(
            f"{where}: no intended text: give 'texts' (a list of strings) or a 'layout' with boxes, so the image "
            "can be scored"
        )
    background = entry.get("background_color")
    source = entry.get("source")
    if background is None and isinstance(source, Mapping) and isinstance(source.get("background"), Mapping):
        background = source["background"].get("colors")  # data_prep.synth records
    if background is not None and not (
        isinstance(background, str) or (isinstance(background, list) and all(isinstance(c, str) for c in background))
    ):
        raise ValueError(f"{where}: 'background_color' must be a colour name or a list of them, got {background!r}")
    text_color = entry.get("text_color")
    if text_color is not None and not isinstance(text_color, str):
        raise ValueError(f"{where}: 'text_color' must be a colour name or hex, got {text_color!r}")
    prompt = entry.get("prompt") or entry.get("caption") or (layout.caption if layout is not None else None)
    return EvalSample(
        name=name,
        texts=texts,
        layout=layout,
        path=path,
        prompt=prompt,
        text_color=text_color,
        background_color=background or None,
    )


# -------------------------------------------------------------------------------------------------- folders
def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def load_folder(folder: str | Path, allow_outside: bool = False) -> list[EvalSample]:
    """Lists the samples of an image folder, checking every intended text before any image is read.

    Two ways to say what each image should show:

    * ``manifest.jsonl`` in the folder: one JSON object per line, ``{"image": "a.png", "texts": [...],
      "layout": {...}, "prompt": "...", "text_color": "...", "background_color": "..."}`` (``texts`` or
      ``layout`` required; paths relative to the folder and inside it, unless ``allow_outside``). Only the images
      it lists are evaluated.
    * otherwise a sidecar ``<name>.json`` beside each ``<name>.png|jpg|jpeg|webp``: a textgen Layout JSON, a
      data-stage triple record, or an object with the manifest's keys.

    Raises:
        FileNotFoundError: the folder, a listed image, or an image's sidecar does not exist.
        ValueError: the folder holds no images, or an entry is malformed (the message names file and line).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of images to evaluate")
    manifest = root / MANIFEST_NAME
    samples: list[EvalSample] = []
    if manifest.is_file():
        for lineno, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{manifest}:{lineno}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: invalid JSON ({err.msg})") from err
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
                raise ValueError(f"{where}: expected an object with 'image' (a file name relative to {root})")
            path = root / entry["image"]
            if not allow_outside and not _inside(path, root):
                raise ValueError(
                    f"{where}: image {entry['image']!r} lies outside {root} (manifest paths are relative to their "
                    "folder; pass allow_outside=True to follow them anyway)"
                )
            if not path.is_file():
                raise FileNotFoundError(f"{where}: image {entry['image']!r} not found in {root}")
            samples.append(sample_from_entry(entry, where=where, name=entry["image"], path=path))
        if not samples:
            raise ValueError(f"{manifest}: lists no images")
        return samples
    images = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) and no {MANIFEST_NAME}")
    for path in images:
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"{path}: no intended text: expected a sidecar {sidecar.name} (a textgen layout JSON) or a "
                f"{MANIFEST_NAME} in {root}"
            )
        try:
            entry = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{sidecar}: invalid JSON ({err.msg} at line {err.lineno})") from err
        samples.append(sample_from_entry(entry, where=str(sidecar), name=path.name, path=path))
    return samples


# -------------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class PromptSpec:
    """One prompt of a prompt set.

    Args:
        prompt: The prompt.
        texts: Words to paint (default: the pipeline's reading of the prompt, e.g. its quoted spans).
        layout: A layout to paint instead of planning one.
        seed: Seed of this prompt's images (default: the run's seed plus the prompt's index).
        text_color: Intended text colour (for the colour check).
        background_color: Intended background colour(s).
        name: Name stem of the written images.
    """

    prompt: str
    texts: tuple[str, ...] | None = None
    layout: Layout | None = None
    seed: int | None = None
    text_color: str | None = None
    background_color: str | tuple[str, ...] | None = None
    name: str | None = None


def load_prompts(path: str | Path) -> list[PromptSpec]:
    """Reads a prompt set.

    ``.jsonl``: one object per line with ``prompt`` and optional ``texts``, ``layout``, ``seed``, ``text_color``,
    ``background_color``, ``name``. Any other file: one prompt per line; blank lines and lines starting with
    ``#`` are skipped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file and line of a malformed entry, or a file with no prompts.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such prompt file")
    specs: list[PromptSpec] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path}:{lineno}"
        if not line.strip() or (path.suffix != ".jsonl" and line.lstrip().startswith("#")):
            continue
        if path.suffix != ".jsonl":
            specs.append(PromptSpec(prompt=line.strip()))
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: invalid JSON ({err.msg})") from err
        if not isinstance(entry, dict) or not isinstance(entry.get("prompt"), str) or not entry["prompt"].strip():
            raise ValueError(f"{where}: expected an object with a non-empty 'prompt' string")
        texts = tuple(_as_texts(entry["texts"], where)) if entry.get("texts") is not None else None
        layout = Layout.from_dict(entry["layout"], source=f"{where}: layout") if entry.get("layout") else None
        if texts is not None and layout is not None:
            raise ValueError(f"{where}: give 'texts' or 'layout', not both (a layout already says which texts)")
        seed = entry.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"{where}: 'seed' must be an integer, got {seed!r}")
        background = entry.get("background_color")
        if isinstance(background, list):
            background = tuple(background)
        specs.append(
            PromptSpec(
                prompt=entry["prompt"],
                texts=texts,
                layout=layout,
                seed=seed,
                text_color=entry.get("text_color"),
                background_color=background,
                name=entry.get("name"),
            )
        )
    if not specs:
        raise ValueError(f"{path}: no prompts")
    return specs
