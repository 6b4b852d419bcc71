"""textgen's ground floor: the vocabulary and rules every other part builds on, importing nothing above it.

* :mod:`~textgen.core.layout` - text boxes on a canvas (the one shared vocabulary), checks and serialisations;
* :mod:`~textgen.core.script` - character rules: scripts, what can be drawn, shaping, line-breaking units;
* :mod:`~textgen.core.fonts` - bundled and system fonts, per-script choice, coverage checks;
* :mod:`~textgen.core.glyph` - layouts rendered as glyph images (fonts fitted to boxes);
* :mod:`~textgen.core.ocr` - the OCR engines (RapidOCR, EasyOCR) and their boxes;
* :mod:`~textgen.core.shards` - the triple record and the one tar shard reader and writer;
* :mod:`~textgen.core.metrics` - OCR metrics of the papers and the colour checks; :mod:`~textgen.core.colors` -
  the named palette and prompt colour words;
* :mod:`~textgen.core.outputs`, :mod:`~textgen.core.cliargs` - whole-or-nothing output files and command-line
  helpers shared by every command.

``data_prep`` and ``layout_model`` import only this package (and third-party libraries); the top of ``textgen``
(pipeline, evaluation, training, UI, CLI) may import everything. ``tests/test_imports.py`` holds these rules.
"""
