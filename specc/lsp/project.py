"""The other specs of a project that read a file through `imports:` or `extends:`, directly or
through other files: a block's references and its rename reach them.

The project is the folder a spec's `imports:` may read (specc.includes.project_root: the
folder of the nearest pyproject.toml with [tool.specc], else the spec's own folder). Each
YAML file there that names `imports:` or `extends:` is composed as `specc validate` composes
it (with the editor's unsaved texts) and kept when its composition asked for the file.
"""
from __future__ import annotations

import os
from typing import Final, Iterator

from specc import loader
from specc.errors import SpecError

#: YAML files looked at in one project; beyond, the rest are left out (a rename says so).
MAX_FILES: Final = 2000
#: Folders that hold no specs of the project's own.
SKIPPED: Final = frozenset({".git", ".hg", ".venv", "venv", "env", "node_modules",
                            "__pycache__", ".tox", ".mypy_cache", ".pytest_cache", "build",
                            "dist", "site-packages"})


def yaml_files(root: str) -> Iterator[str]:
    """The project's *.yaml / *.yml files, in sorted order, at most MAX_FILES."""
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED and not d.startswith("."))
        for name in sorted(files):
            if name.endswith((".yaml", ".yml")):
                yield os.path.join(folder, name)
                count += 1
                if count >= MAX_FILES:
                    return


def text_of(real: str, texts: dict[str, str]) -> str | None:
    """The editor's text of a file, else what is on disk; None when it cannot be read as a
    spec (too large, not UTF-8, gone)."""
    if real in texts:
        return texts[real]
    try:
        if os.path.getsize(real) > loader.MAX_BYTES:
            return None
        with open(real, encoding="utf-8") as stream:
            return stream.read()
    except (OSError, UnicodeDecodeError):
        return None


def readers(target: str, root: str, texts: dict[str, str]) -> list[tuple[str, str]]:
    """(file, text) of every YAML file under `root` but `target` (a real path) whose imports
    or base read `target`; `texts`: the editor's texts by real path."""
    from specc.compose import OpenFiles, compose

    out = []
    for file in yaml_files(root):
        real = os.path.realpath(file)
        if real == target:
            continue
        text = text_of(real, texts)
        if text is None or ("imports" not in text and "extends" not in text):
            continue
        asked = OpenFiles(dict(texts))
        try:
            compose(loader.load_text(text, file), asked)
        except SpecError:
            pass                        # a broken reader still names what it asked for
        if target in asked.asked:
            out.append((file, text))
    return out
