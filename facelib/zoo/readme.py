"""`python -m facelib.zoo.readme [README.md]`: rewrite the README's results blocks.

The blocks quote the results files (`facelib.results`) and the zoo manifest (block name "zoo",
`facelib.zoo.table`); this is the lowest layer that knows both.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from facelib.results import render_readme

from .store import table

__all__ = ["SOURCES", "render", "main"]

#: The tables a README block may quote besides the results files.
SOURCES = {"zoo": table}


def render(text: str, folder=None) -> str:
    """`text` with every results block regenerated from the results files and the zoo manifest."""
    return render_readme(text, folder, sources=SOURCES)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the results blocks of the README (default README.md) from the files."""
    path = Path((argv or sys.argv[1:] or ["README.md"])[0])
    text = path.read_text()
    new = render(text)
    if new != text:
        path.write_text(new)
        print(f"updated the results blocks of {path}")
    else:
        print(f"{path} already quotes the results files")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
