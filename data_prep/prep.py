"""``textgen prep``: real images become (image, layout, caption) triples in webdataset shards.

    textgen prep photos/ -o triples/ --workers 2                      # a folder of images, local pool
    textgen prep laion_shards/ -o triples/ --runner ray --workers 8   # img2dataset output on Ray
    textgen prep list.parquet -o triples/ --captioner Salesforce/blip-image-captioning-base

The job is resumable: run the same command again after an interruption and it skips the finished shards
and redoes the rest. See ``docs/data_prep.md`` for the output format, the filters and their defaults.
"""

from __future__ import annotations

import argparse

from data_prep.captions import DTYPES, RECAPTION_MODES, CaptionerOptions, TrainingCaptionOptions
from data_prep.decode import DecodeOptions
from data_prep.filters import FilterOptions
from data_prep.readers import INPUT_FORMATS

_FILTERS = FilterOptions()
_DECODE = DecodeOptions()
_CAPTIONER = CaptionerOptions()
_TRAINING = TrainingCaptionOptions()


def _languages(value: str) -> tuple[str, ...]:
    codes = tuple(v.strip() for v in value.replace("+", ",").split(",") if v.strip())
    if not codes:
        raise argparse.ArgumentTypeError(f"expected language codes such as 'en' or 'zh,en', got {value!r}")
    return codes


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}") from err
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input", help="folder of images, folder/glob of webdataset .tar shards, or .jsonl/.parquet list"
    )
    parser.add_argument("-o", "--output", required=True, help="output folder for shards, stats and rejected.jsonl")

    group = parser.add_argument_group("input")
    group.add_argument("--input-format", choices=INPUT_FORMATS, default="auto", help="input kind (default: detect)")
    group.add_argument("--shard-size", type=int, default=1000, help="inputs per output shard (default 1000)")
    group.add_argument("--path-column", help="list column with the image path (default: path/image/file...)")
    group.add_argument("--caption-column", help="list column with the caption (default: caption/text/alt...)")

    group = parser.add_argument_group("OCR")
    group.add_argument("--engine", default="default", help="OCR engine: default, rapidocr, easyocr")
    group.add_argument("--languages", type=_languages, default=("en",), help="OCR languages: en (default), zh,en")
    group.add_argument("--ocr-threads", type=int, default=1, help="threads per OCR engine (default 1 per worker)")
    group.add_argument("--ocr-model-dir", help="folder with the engine's weights (default: those its package ships)")
    group.add_argument("--word-boxes", action="store_true", help="one box per word instead of per line (rapidocr)")

    group = parser.add_argument_group("filters (defaults and their sources: docs/data_prep.md)")
    group.add_argument("--min-confidence", type=_fraction, default=_FILTERS.min_confidence, help="drop boxes below")
    group.add_argument(
        "--min-text-height", type=_fraction, default=_FILTERS.min_text_height, help="of the shorter image side"
    )
    group.add_argument(
        "--min-text-area", type=_fraction, default=_FILTERS.min_text_area, help="reject below (0 = off)"
    )
    group.add_argument("--max-boxes", type=int, default=_FILTERS.max_boxes, help="reject samples with more boxes")
    group.add_argument(
        "--keep-garbage", action="store_true", help="keep boxes with no letter/digit or one repeated char"
    )
    group.add_argument("--text-languages", type=_languages, help="keep only boxes in these scripts, e.g. en or zh,en")
    group.add_argument("--keep-no-text", action="store_true", help="keep samples without text (default: reject)")
    group.add_argument("--min-side", type=int, default=_DECODE.min_side, help="reject images with a smaller side")
    group.add_argument("--max-pixels", type=int, default=_DECODE.max_pixels, help="reject larger images (bombs)")
    group.add_argument("--max-side", type=int, help="downscale images with a longer side (default: keep size)")

    group = parser.add_argument_group("captions")
    group.add_argument("--captioner", help="transformers image-to-text model: hub id or local folder")
    group.add_argument(
        "--recaption", choices=RECAPTION_MODES, default=_CAPTIONER.mode, help="caption missing (default) or all"
    )
    group.add_argument("--caption-prompt", help="prompt for conditional captioners (e.g. '<MORE_DETAILED_CAPTION>')")
    group.add_argument("--caption-batch-size", type=int, default=_CAPTIONER.batch_size, help="images per generate")
    group.add_argument("--caption-max-tokens", type=int, default=_CAPTIONER.max_new_tokens, help="caption length")
    group.add_argument("--device", default=_CAPTIONER.device, help="captioner device: cpu, cuda, cuda:1, auto")
    group.add_argument("--dtype", choices=DTYPES, default=_CAPTIONER.dtype, help="captioner dtype")
    group.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own code")
    group.add_argument("--caption-template", default=_TRAINING.template, help="training caption: {caption} {words}")
    group.add_argument("--word-template", default=_TRAINING.word_template, help="one word in it: {text}")
    group.add_argument("--max-caption-words", type=int, help="name at most this many boxes in the training caption")

    group = parser.add_argument_group("runner")
    group.add_argument("--runner", choices=["local", "ray"], default="local", help="local processes or Ray Data")
    group.add_argument("--workers", type=int, default=1, help="worker processes / OCR actors (default 1)")
    group.add_argument("--batch-size", type=int, default=16, help="samples per batch through the stages")
    group.add_argument("--ray-address", help="address of a running Ray cluster (default: start a local one)")
    group.add_argument("--overwrite", action="store_true", help="delete previous shards in OUTPUT instead of resuming")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """Builds the :class:`data_prep.runners.PrepConfig` of parsed ``textgen prep`` arguments."""
    from data_prep.runners import PrepConfig

    ocr_options = {"threads": args.ocr_threads}
    if args.ocr_model_dir:
        ocr_options["model_dir"] = args.ocr_model_dir
    if args.word_boxes:
        ocr_options["word_boxes"] = True
    return PrepConfig(
        input=args.input,
        output=args.output,
        input_format=args.input_format,
        shard_size=args.shard_size,
        path_column=args.path_column,
        caption_column=args.caption_column,
        engine=args.engine,
        languages=tuple(args.languages),
        ocr_options=ocr_options,
        decode=DecodeOptions(min_side=args.min_side, max_pixels=args.max_pixels, max_side=args.max_side),
        filters=FilterOptions(
            min_confidence=args.min_confidence,
            min_text_height=args.min_text_height,
            min_text_area=args.min_text_area,
            max_boxes=args.max_boxes,
            drop_garbage=not args.keep_garbage,
            languages=tuple(args.text_languages) if args.text_languages else None,
            keep_no_text=args.keep_no_text,
        ),
        captioner=CaptionerOptions(
            model=args.captioner,
            mode=args.recaption,
            prompt=args.caption_prompt,
            batch_size=args.caption_batch_size,
            max_new_tokens=args.caption_max_tokens,
            device=args.device,
            dtype=args.dtype,
            trust_remote_code=args.trust_remote_code,
        ),
        training_caption=TrainingCaptionOptions(
            template=args.caption_template, word_template=args.word_template, max_words=args.max_caption_words
        ),
        runner=args.runner,
        workers=args.workers,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        ray_address=args.ray_address,
    )


def run(args: argparse.Namespace) -> int:
    from data_prep.runners import run_prep

    summary = run_prep(config_from_args(args))
    rejected = ", ".join(f"{k} {v}" for k, v in summary["rejected"].items()) or "none"
    print(
        f"{args.output}: {summary['written']} triples written, {summary['rejected_total']} rejected ({rejected}) "
        f"of {summary['inputs']} inputs in {summary['shards']} shard(s); this run: {summary['shards_written']} "
        f"shard(s) in {summary['seconds']:.1f} s ({summary['images_per_second']:.2f} img/s), "
        f"{summary['shards_skipped']} already done"
    )
    for failure in summary["shards_failed"]:
        print(f"shard {failure['shard']} failed (rerun to retry): {failure['error']}")
    return 1 if summary["shards_failed"] else 0
