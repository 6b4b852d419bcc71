"""The judges of other tests, given cases they must flag: overlap and outside counts, shard accounting over
realistic rows, and best-of-N ranking where the mean, the max and the first box disagree."""

import json

import pytest

from layout_model.metrics import boxes_outside, overlapping_pairs
from textgen.core.layout import Layout, TextBox


def _layout(*boxes):
    return Layout(100, 100, tuple(TextBox(f"t{i}", b) for i, b in enumerate(boxes)))


def test_overlapping_pairs_counts_every_overlapping_pair_and_only_those():
    a, b = (0.1, 0.1, 0.5, 0.5), (0.4, 0.4, 0.8, 0.8)  # overlap
    c = (0.45, 0.0, 0.6, 0.45)  # overlaps a (x 0.45-0.5, y 0.1-0.45) and b (x 0.45-0.6, y 0.4-0.45)
    touching = (0.5, 0.1, 0.7, 0.3)  # shares a's right edge: no area in common
    far = (0.9, 0.9, 1.0, 1.0)
    assert overlapping_pairs(_layout(a, b)) == 1
    assert overlapping_pairs(_layout(a, touching)) == 0
    assert overlapping_pairs(_layout(a, far, touching)) == 0
    assert overlapping_pairs(_layout(a, b, c)) == 3  # a-b, a-c, b-c (c reaches y 0.45 > b's top 0.4)
    assert overlapping_pairs(_layout(a, a, a)) == 3  # identical boxes: every pair


def test_boxes_outside_counts_boxes_off_the_canvas_or_without_area():
    inside = (0.1, 0.1, 0.2, 0.2)
    assert boxes_outside(_layout(inside)) == 0
    assert boxes_outside(_layout(inside, (0.9, 0.1, 1.1, 0.2))) == 1
    assert boxes_outside(_layout((-0.1, 0.1, 0.2, 0.2), (0.1, 0.1, 0.1, 0.2), (0.3, 0.5, 0.4, 0.5))) == 3
    assert boxes_outside(_layout((0.0, 0.0, 1.0, 1.0))) == 0  # the whole canvas is inside


def _row(key, reject="", boxes=1, dropped=None):
    from textgen.core.shards import OCRBox

    ocr = [OCRBox.from_polygon(f"W{i}", [(4, 4 + 10 * i), (40, 4 + 10 * i), (40, 12 + 10 * i), (4, 12 + 10 * i)],
                               0.9, "en").to_dict() for i in range(boxes)]  # fmt: skip
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (64, 64), "white").save(buf, format="PNG")
    return {
        "key": key, "shard": key.split("_")[0], "index": int(key.split("_")[1]), "data": b"", "caption": "c",
        "source": json.dumps({"path": f"{key}.png"}), "reject": reject, "detail": "why" if reject else "",
        "image": b"" if reject else buf.getvalue(), "image_ext": "" if reject else "png",
        "width": 0 if reject else 64, "height": 0 if reject else 64, "transforms": "",
        "ocr": "[]" if reject else json.dumps(ocr), "dropped": json.dumps(dropped or {}),
        "caption_source": "source", "training_caption": "", "seconds": json.dumps({"ocr": 0.1}),
    }  # fmt: skip


def test_shard_accounting_adds_up_with_many_boxes_and_repeated_reasons(tmp_path):
    from data_prep.writer import ShardWriter, merge_rejected, summarize

    plan = {
        "00000": [("", 3, {"box_garbage": 2}), ("no_text", 0, None), ("no_text", 0, None), ("", 2, None)],
        "00001": [("", 1, {"box_small": 1}), ("not_an_image", 0, None), ("no_text", 0, None), ("", 4, None),
                  ("not_an_image", 0, None)],
    }  # fmt: skip
    for shard, rows in plan.items():
        writer = ShardWriter(tmp_path, shard)
        for i, (reject, boxes, dropped) in enumerate(rows):
            writer.add(_row(f"{shard}_{i:06d}", reject, boxes, dropped))
        stats = writer.close()
        written = [r for r in rows if not r[0]]
        assert stats["inputs"] == len(rows) == stats["written"] + stats["rejected_total"]
        assert stats["written"] == len(written)
        assert stats["boxes"] == sum(r[1] for r in written)
    totals = summarize(tmp_path)
    assert (totals["inputs"], totals["written"], totals["rejected_total"], totals["boxes"]) == (9, 4, 5, 10)
    assert totals["rejected"] == {"no_text": 3, "not_an_image": 2}
    assert totals["dropped_boxes"] == {"box_garbage": 2, "box_small": 1}
    assert merge_rejected(tmp_path) == 5


class _ScriptedEngine:
    """Reads crops by their position: each candidate image is a solid colour that says which texts it shows."""

    def __init__(self, readings):
        self.readings = readings  # colour -> list of readings per box (in order)
        self.calls = {}

    def read(self, image):
        from textgen.core.shards import OCRBox

        colour = image.getpixel((0, 0))
        count = self.calls.get(colour, 0)
        self.calls[colour] = count + 1
        text = self.readings[colour][count % len(self.readings[colour])]
        return [OCRBox.from_polygon(text, [(0, 0), (4, 0), (4, 4), (0, 4)], 0.9)] if text else []


@pytest.fixture()
def pipeline_with(monkeypatch):
    from textgen.pipeline import PosterPipeline

    def build(engine):
        pipe = PosterPipeline.__new__(PosterPipeline)
        pipe._ocr_engine = engine
        return pipe

    return build


def test_best_of_score_is_the_mean_over_boxes_not_the_max_or_the_first(pipeline_with):
    from PIL import Image

    layout = Layout(64, 64, (TextBox("OPEN", (0.0, 0.0, 1.0, 0.3)), TextBox("NOW", (0.0, 0.5, 1.0, 0.8))))
    # red: first box perfect, second unreadable (mean 0.5, max 1.0, first 1.0)
    # blue: both boxes half right (mean 0.5+, max < 1, first < 1)
    engine = _ScriptedEngine({(255, 0, 0): ["OPEN", ""], (0, 0, 255): ["OPXN", "NOX"]})
    pipe = pipeline_with(engine)
    red, blue = Image.new("RGB", (64, 64), (255, 0, 0)), Image.new("RGB", (64, 64), (0, 0, 255))
    scores, reads = pipe.score([red, blue], layout)
    assert reads == [["OPEN", ""], ["OPXN", "NOX"]]
    assert scores[0] == pytest.approx(0.5)  # mean of 1.0 and 0.0
    assert scores[1] == pytest.approx((0.75 + 2 / 3) / 2)  # mean, above red's mean though both first boxes differ
    assert scores[1] > scores[0]


class _FakeSD:
    """Stands in for the diffusers pipeline: returns solid images in a fixed colour order."""

    def __init__(self, colours):
        self.colours = colours
        self.vae_scale_factor = 8
        self.unet = type("U", (), {"config": type("C", (), {"in_channels": 4, "sample_size": 8})()})()
        self.vae = type("V", (), {"config": type("C", (), {"latent_channels": 4})()})()
        self.controlnet = object()

    def set_progress_bar_config(self, **kwargs):
        pass

    def __call__(self, num_images_per_prompt, height, width, **kwargs):
        from PIL import Image

        images = [Image.new("RGB", (width, height), c) for c in self.colours[:num_images_per_prompt]]
        return type("Out", (), {"images": images})()


def test_best_of_ranks_by_score_and_keeps_generation_order_on_ties():
    from textgen.pipeline import PipelineConfig, PosterPipeline

    colours = [(10, 0, 0), (20, 0, 0), (30, 0, 0), (40, 0, 0)]
    engine = _ScriptedEngine({colours[0]: ["OPXN"], colours[1]: ["OPEN"], colours[2]: ["OPXN"], colours[3]: [""]})
    pipe = PosterPipeline(_FakeSD(colours), planner="rule", config=PipelineConfig(height=64, width=64),
                          ocr_engine=engine)  # fmt: skip
    layout = Layout(64, 64, (TextBox("OPEN", (0.1, 0.2, 0.9, 0.8)),))
    out = pipe("a sign", layout=layout, best_of=4, seed=0, progress=False)
    got = [im.getpixel((0, 0)) for im in out.images]
    assert got == [colours[1], colours[0], colours[2], colours[3]]  # best first; the tie keeps 0 before 2
    assert out.scores == pytest.approx([1.0, 0.75, 0.75, 0.0])
    assert out.ocr_texts == [["OPEN"], ["OPXN"], ["OPXN"], [""]]
