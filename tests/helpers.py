"""Paths the tests share (imported by name: pyproject's pytest `pythonpath` holds tests/)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TRANSFORMER = SPECS / "transformer"
PLUGINS = ROOT / "tests" / "plugins"
