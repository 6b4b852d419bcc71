"""Output files that appear whole or not at all.

A command writes each of its outputs under a temporary name beside the final one and renames them all only when
every write has succeeded: a full disk, a bad input found halfway or an interrupt leaves no new, half-written or
replaced file behind.

    with OutputFiles() as out:
        image.save(out.path("poster.png"))
        layout.save(out.path("layout.json"))
    # both renamed into place here; on an exception, neither
"""

from __future__ import annotations

import os
from pathlib import Path


class OutputFiles:
    """Collects temporary paths and renames them to their final names on success (see the module docstring)."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def path(self, final: str | Path) -> Path:
        """A temporary path for ``final`` (same folder, same extension: formats are chosen by extension)."""
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_dir():
            raise IsADirectoryError(f"{final}: is a folder, expected a file path to write")
        tmp = final.with_name(f".{final.stem}.{os.getpid()}.partial{final.suffix}")
        self.pending.append((tmp, final))
        return tmp

    def commit(self) -> None:
        for tmp, final in self.pending:
            os.replace(tmp, final)
        self.pending.clear()

    def discard(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        self.pending.clear()

    def __enter__(self) -> OutputFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
