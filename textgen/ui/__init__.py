"""``textgen ui``: a local web app to plan, edit and paint layouts (Gradio, the ``ui`` extra).

* :mod:`textgen.ui.table` — the layout table (pixels) to and from a :class:`textgen.core.layout.Layout`, with checks
  that name the row and column;
* :mod:`textgen.ui.studio` — the page's actions (plan, preview, generate) and the per-model pipeline cache;
* :mod:`textgen.ui.app` — the Gradio page (:func:`~textgen.ui.app.build_app`, :func:`~textgen.ui.app.launch`).

Importing this package imports neither Gradio nor torch; ``textgen ui`` does, when it starts the server.
"""

from __future__ import annotations

import argparse

from textgen.core.cliargs import CommandError, parse_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="model preselected in the page: a preset (sd15-canny, sd15-glyph), a saved PosterPipeline folder, or a "
        "diffusers SD base (then --controlnet); default: the model shipped with textgen",
    )
    parser.add_argument("--controlnet", help="ControlNet folder or hub id, for models that need one")
    parser.add_argument("--planner", default="rule", help="'rule' (default) or an LLM planner folder")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    parser.add_argument("--canvas", type=parse_size, default=(512, 512), help="editing canvas WxH (default 512x512)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32", help="model dtype")
    parser.add_argument("--local-files-only", action="store_true", help="never touch the network to load models")
    parser.add_argument("--output-dir", help="where downloads are written (default: a temporary folder)")


def run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError as err:
        raise CommandError("textgen ui needs Gradio: pip install 'textgen[ui]'") from err

    from textgen.ui.app import build_app, launch
    from textgen.ui.studio import StudioOptions
    from textgen.ui.table import CanvasSize

    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be in [0, 65535], got {args.port}")
    options = StudioOptions(
        model=args.model,
        controlnet=args.controlnet,
        planner=args.planner,
        device=args.device,
        dtype=args.dtype,
        local_files_only=args.local_files_only,
        canvas=CanvasSize.parse(*args.canvas),
        output_dir=args.output_dir,
    )
    app = build_app(options)
    launch(app, host=args.host, port=args.port or _free_port(args.host))
    return 0


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
