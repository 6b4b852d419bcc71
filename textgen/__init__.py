"""textgen: legible text in generated images.

The light core (layouts, fonts, glyph rendering) imports without torch; the generation pipeline and the
training and evaluation tools import their heavy dependencies when used.
"""

from textgen.core.glyph import GlyphOptions, render_glyph
from textgen.core.layout import Layout, LayoutError, TextBox

__version__ = "0.1.0"

__all__ = ["GlyphOptions", "Layout", "LayoutError", "TextBox", "render_glyph", "__version__"]
