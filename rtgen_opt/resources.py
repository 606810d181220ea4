"""Where the built-in scenarios and latency databases live.

Installed, they are package data inside ``rtgen_opt/`` (pyproject maps the top-level
``instances/`` and ``latency_db/`` folders there); in a source checkout they are the
top-level folders themselves.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder of built-in data ``name`` (``instances`` or ``latency_db``)."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"built-in data folder {name!r} is missing from this installation")
