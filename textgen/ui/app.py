"""The Gradio page of ``textgen ui``: plan a layout, edit it over the glyph preview, generate, download.

Everything the page does is a :class:`textgen.ui.studio.Studio` method; the functions here only move values between
widgets and those methods, and turn every error into a message in the page (the server never dies on bad input).
The layout editor is a table (numbers, the must) and a canvas drawn by a small script in a ``gr.HTML`` component
(drag a box to move it, its corner handle to resize it); both edit the same rows.
"""

# No `from __future__ import annotations` here: Gradio finds `evt: gr.EventData` parameters by their evaluated
# annotations, and `gr` is imported inside build_app (Gradio stays out of `import textgen.ui`).
from typing import Any

from textgen.ui.editor import build_edit_tab
from textgen.ui.studio import SHIPPED, Studio, StudioOptions, UIError, empty_canvas, friendly_error, model_defaults
from textgen.ui.table import COLUMNS, DATATYPES, TableError, delete_row, move_row, new_row

EXAMPLE_PROMPT = 'A vintage poster for a jazz night that says "BLUE NOTE" and "FRIDAY 9PM"'

CANVAS_HTML = '<div class="tg-stage" data-testid="layout-canvas"></div>'

CANVAS_CSS = """
.tg-stage { position: relative; width: 100%; max-width: 560px; margin: 0 auto; aspect-ratio: 1 / 1;
  background: #fff; border: 1px solid #c8c8c8; touch-action: none; user-select: none; overflow: visible; }
.tg-glyph { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.tg-box { position: absolute; box-sizing: border-box; border: 2px dashed #1f6feb; cursor: move; }
.tg-box.tg-active { border-style: solid; background: rgba(31, 111, 235, 0.08); }
.tg-label { position: absolute; top: -1.45em; left: -2px; font: 12px/1.3 sans-serif; color: #222;
  background: rgba(255, 255, 255, 0.85); padding: 0 3px; white-space: nowrap; pointer-events: none; }
.tg-handle { position: absolute; right: -7px; bottom: -7px; width: 12px; height: 12px; background: #1f6feb;
  border: 2px solid #fff; border-radius: 2px; cursor: nwse-resize; }
.tg-empty { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  color: #888; font: 14px sans-serif; pointer-events: none; }
"""

# Draws the glyph and the boxes from props.value, and reports drags as 'boxmove' events (pixels of the canvas).
CANVAS_JS = """
const stage = () => element.querySelector('.tg-stage');
const place = (div, b, v) => {
  div.style.left = (100 * b[0] / v.w) + '%';
  div.style.top = (100 * b[1] / v.h) + '%';
  div.style.width = (100 * (b[2] - b[0]) / v.w) + '%';
  div.style.height = (100 * (b[3] - b[1]) / v.h) + '%';
};
const draw = () => {
  const v = props.value || {};
  const st = stage();
  if (!st) return;
  st.innerHTML = '';
  st.style.aspectRatio = (v.w || 1) + ' / ' + (v.h || 1);
  if (v.src) {
    const img = document.createElement('img');
    img.className = 'tg-glyph';
    img.src = v.src;
    img.alt = 'glyph preview';
    img.draggable = false;
    st.appendChild(img);
  } else {
    const hint = document.createElement('div');
    hint.className = 'tg-empty';
    hint.textContent = 'Type a prompt and press Plan layout';
    st.appendChild(hint);
  }
  (v.boxes || []).forEach((b, i) => {
    const div = document.createElement('div');
    div.className = 'tg-box';
    div.dataset.index = String(i);
    div.style.borderColor = (v.colors || [])[i] || '#1f6feb';
    place(div, b, v);
    const label = document.createElement('span');
    label.className = 'tg-label';
    label.textContent = (v.labels || [])[i] || String(i + 1);
    div.appendChild(label);
    const handle = document.createElement('div');
    handle.className = 'tg-handle';
    handle.title = 'drag to resize';
    div.appendChild(handle);
    st.appendChild(div);
  });
};
let drag = null;
element.addEventListener('pointerdown', (e) => {
  const box = e.target.closest('.tg-box');
  const v = props.value;
  if (!box || !v || !v.boxes) return;
  const i = Number(box.dataset.index);
  const rect = stage().getBoundingClientRect();
  drag = { i, box, mode: e.target.classList.contains('tg-handle') ? 'resize' : 'move', x: e.clientX, y: e.clientY,
           sx: v.w / rect.width, sy: v.h / rect.height, b0: v.boxes[i].slice(), b: null };
  box.setPointerCapture(e.pointerId);
  box.classList.add('tg-active');
  e.preventDefault();
});
element.addEventListener('pointermove', (e) => {
  if (!drag) return;
  const v = props.value;
  const dx = (e.clientX - drag.x) * drag.sx, dy = (e.clientY - drag.y) * drag.sy;
  const [x0, y0, x1, y1] = drag.b0;
  let b;
  if (drag.mode === 'move') {
    const nx = Math.min(Math.max(x0 + dx, 0), v.w - (x1 - x0));
    const ny = Math.min(Math.max(y0 + dy, 0), v.h - (y1 - y0));
    b = [nx, ny, nx + (x1 - x0), ny + (y1 - y0)];
  } else {
    b = [x0, y0, Math.min(Math.max(x1 + dx, x0 + 4), v.w), Math.min(Math.max(y1 + dy, y0 + 4), v.h)];
  }
  drag.b = b.map(Math.round);
  place(drag.box, drag.b, v);
});
const finish = () => {
  if (!drag) return;
  const d = drag;
  drag = null;
  d.box.classList.remove('tg-active');
  const moved = d.b !== null && d.b.some((x, k) => x !== Math.round(d.b0[k]));  // a click selects, a drag moves
  if (moved) trigger('boxmove', { index: d.i, box: d.b });
  else trigger('boxselect', { index: d.i });
};
element.addEventListener('pointerup', finish);
element.addEventListener('pointercancel', finish);
draw();
watch('value', draw);
"""

PAGE_CSS = """
#tg-status p, #tg-gen-status p { margin: 0.25em 0; }
.tg-error { color: #b42318; font-weight: 600; }
"""

HELP = """Plan a layout from the prompt's quoted words, then fix it: **drag** a box on the preview to move it (its
corner handle resizes it) or **edit the table** (pixels of the canvas; `angle` in degrees, counter-clockwise;
`font` a name below or a font file path; `color` `#rrggbb` or a name). The glyph preview re-renders after every
edit. **Generate** paints the layout with the chosen model and reads every image back with OCR. The **Edit** tab
changes the words of an image you upload: OCR finds its text, you type the new words, only those boxes are
repainted."""


def _ok(message: str) -> str:
    return message


def _error(message: str) -> str:
    return f'<span class="tg-error">⚠ {message}</span>'


def _fonts_markdown() -> str:
    from textgen.core.fonts import available_fonts, font_style

    lines = [f"- `{name}`: {font_style(name)}" for name in sorted(available_fonts())]
    return "Fonts (blank = noto-sans, with CJK fallback):\n\n" + "\n".join(lines)


def build_app(options: StudioOptions | None = None, studio: Studio | None = None):
    """Builds the page.

    Args:
        options: App options (model, planner, device...); ignored when ``studio`` is given.
        studio: The :class:`Studio` doing the work (tests pass one with a planner or models of their own).

    Returns:
        A ``gr.Blocks``; start it with :func:`launch`.
    """
    import gradio as gr

    studio = studio or Studio(options)
    opts = studio.options
    canvas = opts.canvas
    steps_default, guidance_default = model_defaults(opts.model)
    from textgen.pipeline import PRESETS

    model_choices = [SHIPPED, *PRESETS]
    if opts.model and opts.model not in model_choices:
        model_choices.insert(0, opts.model)

    # ------------------------------------------------------------------------------------------- callbacks
    def layout_outputs(preview) -> tuple[Any, ...]:
        return (
            preview.canvas,
            _ok(preview.message),
            gr.update(value=str(preview.files["layout"]), interactive=True),
            gr.update(value=str(preview.files["glyph"]), interactive=True),
        )

    def on_plan(prompt, width, height, seed):
        try:
            rows, preview = studio.plan(prompt, width, height, seed)
        except Exception as err:
            return (gr.skip(), gr.skip(), _error(friendly_error(err)), gr.skip(), gr.skip(), gr.skip())
        return (rows, *layout_outputs(preview), (preview.layout.width, preview.layout.height))

    def on_edit(rows, width, height, prompt):
        try:
            preview = studio.preview(rows, width, height, caption=prompt)
        except Exception as err:  # keep the last good preview; say what to fix
            return (gr.skip(), _error(friendly_error(err)), gr.skip(), gr.skip())
        return layout_outputs(preview)

    def on_resize(rows, width, height, previous):
        """Canvas size changed: scale the boxes with it (the layout is resolution-free, its pixels are not)."""
        from textgen.ui.table import CanvasSize, layout_to_rows, rows_to_layout

        try:
            new = CanvasSize.parse(width, height)
            old = CanvasSize(*previous)
            if new == old:
                return gr.skip(), gr.skip(), gr.skip()
            layout = rows_to_layout(rows, old, check_fonts=False)
        except Exception as err:
            return gr.skip(), _error(friendly_error(err)), gr.skip()
        return layout_to_rows(layout, new), gr.skip(), (new.width, new.height)

    def on_move(rows, width, height, evt: gr.EventData):
        from textgen.ui.table import CanvasSize

        try:
            data = evt._data or {}
            canvas = CanvasSize.parse(width, height)
            return move_row(rows, int(data.get("index", -1)), data.get("box"), canvas), gr.skip()
        except Exception as err:
            return gr.skip(), _error(friendly_error(err))

    def on_canvas_select(rows, evt: gr.EventData):
        index = int((evt._data or {}).get("index", -1))
        return index, _ok(f"box {index + 1} selected: edit its row in the table, or press Delete box")

    def on_table_select(evt: gr.SelectData):
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return int(index)

    def on_add(rows, width, height):
        from textgen.ui.table import CanvasSize

        try:
            return new_row(rows, CanvasSize.parse(width, height)), gr.skip()
        except Exception as err:
            return gr.skip(), _error(friendly_error(err))

    def on_delete(rows, selected):
        try:
            return delete_row(rows, selected if selected is not None and selected >= 0 else None), None, gr.skip()
        except TableError as err:
            return gr.skip(), gr.skip(), _error(str(err))

    def on_upload(file, width, height):
        try:
            rows, size, caption = studio.load_layout(getattr(file, "name", file), width, height)
        except Exception as err:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), _error(friendly_error(err))
        return rows, size.width, size.height, (size.width, size.height), caption or gr.skip(), _ok("layout loaded")

    def on_generate(prompt, rows, width, height, model, controlnet, seed, steps, guidance, best_of, output_size):
        try:
            result = studio.generate(
                prompt,
                rows,
                width,
                height,
                model=model,
                controlnet=controlnet,
                seed=seed,
                steps=steps,
                guidance=guidance,
                best_of=best_of,
                output_size=output_size,
            )
        except UIError as err:
            gr.Warning(str(err))
            return gr.skip(), gr.skip(), gr.skip(), _error(str(err))
        gallery = list(zip(result.images, result.captions()))
        return gallery, result.score_rows(), [str(p) for p in result.files], _ok(result.message)

    # ------------------------------------------------------------------------------------------------ page
    with gr.Blocks(title="textgen studio", analytics_enabled=False) as app:
        gr.Markdown("# textgen studio\n" + HELP)
        canvas_size = gr.State((canvas.width, canvas.height))
        selected = gr.State(None)
        with gr.Tab("Create", elem_id="tg-tab-create"), gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", value=EXAMPLE_PROMPT, lines=2, elem_id="tg-prompt")
                with gr.Row():
                    width = gr.Number(label="Canvas width (px)", value=canvas.width, precision=0, minimum=16)
                    height = gr.Number(label="Canvas height (px)", value=canvas.height, precision=0, minimum=16)
                    plan_seed = gr.Number(label="Layout seed", value=0, precision=0, minimum=0)
                    plan_btn = gr.Button("Plan layout", variant="secondary", elem_id="tg-plan")
                editor = gr.HTML(
                    value=empty_canvas(canvas),
                    html_template=CANVAS_HTML,
                    css_template=CANVAS_CSS,
                    js_on_load=CANVAS_JS,
                    elem_id="tg-canvas",
                    apply_default_css=False,
                )
                status = gr.Markdown("", elem_id="tg-status")
                table = gr.Dataframe(
                    headers=list(COLUMNS),
                    datatype=list(DATATYPES),
                    value=[],
                    type="array",
                    interactive=True,
                    row_count=0,
                    label="Boxes (pixels of the canvas)",
                    show_row_numbers=True,
                    elem_id="tg-table",
                    wrap=True,
                )
                with gr.Row():
                    add_btn = gr.Button("Add box", size="sm", elem_id="tg-add")
                    del_btn = gr.Button("Delete box", size="sm", elem_id="tg-delete")
                    upload_btn = gr.UploadButton("Load layout JSON", file_types=[".json"], size="sm")
                with gr.Row():
                    layout_dl = gr.DownloadButton("Layout JSON", size="sm", interactive=False, elem_id="tg-dl-layout")
                    glyph_dl = gr.DownloadButton("Glyph PNG", size="sm", interactive=False, elem_id="tg-dl-glyph")
                with gr.Accordion("Fonts", open=False):
                    gr.Markdown(_fonts_markdown())
            with gr.Column(scale=2):
                model = gr.Dropdown(
                    choices=model_choices,
                    value=opts.model or SHIPPED,
                    allow_custom_value=True,
                    label="Model (shipped, a preset, or a PosterPipeline folder)",
                    elem_id="tg-model",
                )
                with gr.Row():
                    seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, elem_id="tg-seed")
                    steps = gr.Number(label="Steps", value=steps_default, precision=0, minimum=1, elem_id="tg-steps")
                    best_of = gr.Number(label="Best of N", value=1, precision=0, minimum=1, elem_id="tg-best-of")
                with gr.Accordion("Advanced", open=False):
                    guidance = gr.Number(label="Guidance scale", value=guidance_default)
                    output_size = gr.Textbox(label="Output size WxH (blank: the model's)", value="")
                    controlnet = gr.Textbox(
                        label="ControlNet (folder or hub id; for sd15-glyph or a plain SD base)",
                        value=opts.controlnet or "",
                    )
                gen_btn = gr.Button("Generate", variant="primary", elem_id="tg-generate")
                gen_status = gr.Markdown("", elem_id="tg-gen-status")
                gallery = gr.Gallery(
                    label="Images, best OCR score first",
                    format="png",
                    columns=2,
                    object_fit="contain",
                    height="auto",
                    elem_id="tg-gallery",
                )
                scores = gr.Dataframe(
                    headers=["rank", "OCR score (NED)", "asked -> read"],
                    datatype=["number", "number", "str"],
                    value=[],
                    type="array",
                    interactive=False,
                    label="OCR scores",
                    elem_id="tg-scores",
                    column_widths=["15%", "25%", "60%"],
                    wrap=True,
                )
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="tg-files")

        with gr.Tab("Edit", elem_id="tg-tab-edit"):
            build_edit_tab(
                gr,
                studio,
                [opts.model or SHIPPED, *[c for c in model_choices if c != (opts.model or SHIPPED)]],
                _ok,
                _error,
            )

        # ---------------------------------------------------------------------------------------------- wiring
        layout_out = [editor, status, layout_dl, glyph_dl]
        plan_event = dict(
            fn=on_plan, inputs=[prompt, width, height, plan_seed], outputs=[table, *layout_out, canvas_size]
        )
        plan_btn.click(**plan_event)
        prompt.submit(**plan_event)
        table.change(on_edit, inputs=[table, width, height, prompt], outputs=layout_out)
        for box in (width, height):
            box.submit(on_resize, inputs=[table, width, height, canvas_size], outputs=[table, status, canvas_size])
            box.blur(on_resize, inputs=[table, width, height, canvas_size], outputs=[table, status, canvas_size])
        editor.boxmove(on_move, inputs=[table, width, height], outputs=[table, status])
        editor.boxselect(on_canvas_select, inputs=[table], outputs=[selected, status])
        table.select(on_table_select, inputs=None, outputs=[selected])
        add_btn.click(on_add, inputs=[table, width, height], outputs=[table, status])
        del_btn.click(on_delete, inputs=[table, selected], outputs=[table, selected, status])
        upload_btn.upload(
            on_upload, inputs=[upload_btn, width, height], outputs=[table, width, height, canvas_size, prompt, status]
        )
        gen_btn.click(
            on_generate,
            inputs=[prompt, table, width, height, model, controlnet, seed, steps, guidance, best_of, output_size],
            outputs=[gallery, scores, downloads, gen_status],
        )
    app.studio = studio  # for callers that want the models or the output folder
    return app


def launch(app: Any, host: str = "127.0.0.1", port: int | None = None, *, block: bool = True, quiet: bool = False):
    """Starts the page on ``host:port`` (no share link, no analytics, no server-side rendering).

    Args:
        app: From :func:`build_app`.
        host: Interface to listen on; the default serves this machine only.
        port: Port (``None``: Gradio picks a free one from 7860).
        block: Wait until interrupted; ``False`` returns at once with the server running (tests).
        quiet: Do not print the URL.

    Returns:
        The page's URL.
    """
    _, local_url, _ = app.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        show_error=True,
        quiet=quiet,
        ssr_mode=False,
        css=PAGE_CSS,
        footer_links=[],
        allowed_paths=[str(app.studio.output_dir)],
    )
    if block:
        try:
            app.block_thread()
        finally:
            app.close()
    return local_url
