"""Glyph images must read back exactly through a real OCR engine (RapidOCR, PP-OCR weights from its wheel).

Each image holds four boxes of different shapes (wide banner, medium line, tall box that makes the text wrap,
small squarish box); every text is rendered in two of those shapes across the set. Detections are assigned to the
box holding their centre and joined in reading order; the joined text must equal the intended text exactly
(case and punctuation included; line breaks from wrapping count as spaces).
"""

import pytest

from textgen.core.glyph import render_glyph
from textgen.core.layout import Layout, TextBox

pytest.importorskip("rapidocr")

LATIN = [
    "OPEN",
    "SALE",
    "SUMMER SALE",
    "Grand Opening",
    "Fresh Coffee",
    "BLUE NOTE",
    "Jazz Night",
    "Happy Birthday",
    "50% OFF",
    "$19.99",
    "Only $5",
    "24/7",
    "Buy 1 Get 1 Free",
    "Since 1987",
    "Call 555-0199",
    "10:30 AM",
    "Château",
    "Café",
    "Crème Brûlée",
    "Señor Taco",
    "Über Deals",
    "Naïve Art",
    "Façade",
    "Smørrebrød",
    "Don't Stop",
    "Rock & Roll",
    "Hello, World!",
    "What's New?",
    "Back to School",
    "Black Friday",
    "Cyber Monday",
    "Live Music",
    "Farmers Market",
    "Book Fair",
    "Pizza & Pasta",
    "Vegan Bakery",
    "Ice Cream",
    "Hot Dogs",
    "Thank You",
    "Welcome Home",
    "Good Vibes Only",
    "Keep Calm",
    "Game Over",
    "Level Up",
    "Coming Soon",
    "Now Hiring",
    "Free WiFi",
    "No Parking",
    "Exit",
    "Stop",
    "Danger",
    "Caution Wet Floor",
    "Fitness Club",
    "Yoga Class",
    "Art Gallery",
    "Film Festival",
    "Music Hall",
    "City Library",
    "Museum",
    "Flower Shop",
    "Pet Store",
    "Car Wash",
    "Bike Repair",
    "Hotel California",
    "Ocean View",
    "Mountain Trail",
    "Winter Is Coming",
    "Spring Collection",
    "Autumn Leaves",
    "New Year 2027",
    "Merry Christmas",
    "Halloween Party",
    "Valentine's Day",
    "Easter Egg Hunt",
    "World Cup",
    "Super Bowl",
    "Marathon 42K",
    "Tickets $25",
    "Save 30%",
    "Limited Edition",
    "Best Seller",
    "Top 10",
    "Chapter One",
    "The End",
    "Once Upon a Time",
    "Moonlight Sonata",
    "Sunset Boulevard",
    "Golden Gate",
    "Silver Lining",
    "Dream Big",
    "Think Different",
    "Just Do It",
    "Made in Italy",
    "Handmade Soap",
    "Organic Tea",
    "Craft Beer",
    "Wine Tasting",
    "Cheese Board",
    "Breakfast Club",
    "Open Mic Night",
]
CJK = [
    ("夏季促销", "zh"),
    ("欢迎光临", "zh"),
    ("新年快乐", "zh"),
    ("咖啡店", "zh"),
    ("セール", "ja"),
    ("ありがとう", "ja"),
]

# (x0, y0, x1, y1) of the four slots, one per row so that no two texts share a line (an OCR detector would
# happily join neighbours into one line): wide banner, medium line, tall box (wraps), small squarish box.
SLOTS = [(0.03, 0.02, 0.97, 0.17), (0.15, 0.22, 0.85, 0.34), (0.3, 0.4, 0.7, 0.76), (0.36, 0.81, 0.64, 0.98)]


def _layouts(texts: list[tuple[str, str | None]]) -> list[Layout]:
    """Every text twice, in two different slots; four texts per 512x512 image."""
    placements = [(t, k % 4) for k, t in enumerate(texts)] + [(t, (k + 2) % 4) for k, t in enumerate(texts)]
    layouts = []
    for start in range(0, len(placements), 4):
        group = placements[start : start + 4]
        used: set[int] = set()
        boxes = []
        for (text, lang), slot in group:
            while slot in used:  # keep one text per slot in each image
                slot = (slot + 1) % 4
            used.add(slot)
            boxes.append(TextBox(text, SLOTS[slot], language=lang))
        layouts.append(Layout(512, 512, tuple(boxes)))
    return layouts


def _read_back(engine, layout: Layout) -> list[str]:
    image = render_glyph(layout)
    detections = engine.read(image)
    read = []
    for x0, y0, x1, y1 in layout.pixel_boxes():
        inside = [
            d for d in detections if x0 <= (d.box[0] + d.box[2]) / 2 <= x1 and y0 <= (d.box[1] + d.box[3]) / 2 <= y1
        ]
        read.append(" ".join(d.text for d in inside))
    return read


def _accuracy(engine, texts):
    total, wrong = 0, []
    for layout in _layouts(texts):
        for box, got in zip(layout.boxes, _read_back(engine, layout)):
            total += 1
            if got.replace(" ", "") != box.text.replace(" ", "") if box.language in ("zh", "ja") else got != box.text:
                wrong.append((box.text, got, box.box))
    return total, wrong


@pytest.fixture(scope="module")
def latin_engine():
    from textgen.core.ocr import get_engine

    return get_engine("rapidocr", languages=("en",))


@pytest.fixture(scope="module")
def cjk_engine():
    from textgen.core.ocr import get_engine

    return get_engine("rapidocr", languages=("zh", "en"))


def test_latin_glyphs_read_back_exactly(latin_engine):
    total, wrong = _accuracy(latin_engine, [(t, None) for t in LATIN])
    assert total == 2 * len(LATIN)
    assert 1 - len(wrong) / total >= 0.99, f"{len(wrong)}/{total} misread: {wrong}"


def test_cjk_glyphs_read_back_exactly(cjk_engine):
    # CJK OCR drops the spaces it does not see between characters, so spaces are ignored for these scripts.
    total, wrong = _accuracy(cjk_engine, CJK)
    assert total == 2 * len(CJK)
    assert not wrong, f"misread: {wrong}"
