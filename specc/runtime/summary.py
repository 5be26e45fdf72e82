"""Model summaries as stable text: no terminal width, no colour codes."""
from __future__ import annotations

import os
import re
from typing import Any, Final

LINE_LENGTH: Final = 110
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")


def summary_text(model: Any, line_length: int = LINE_LENGTH) -> str:
    lines: list[str] = []
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(line_length)
    try:
        model.summary(line_length=line_length, print_fn=lambda s, **_: lines.append(s))
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    text = _ANSI.sub("", "\n".join(lines))
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")
