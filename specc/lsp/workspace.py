"""The open specs and the project configuration they are read with.

Each document is analysed with the options of its nearest pyproject.toml's [tool.specc]
(specc.config, as `specc validate` finds it from the spec's folder): the size budget, and the
plugins, imported once per configuration. A configuration is read again, its plugins
unregistered and imported anew, when pyproject.toml or one of its one-file plugins changes on
disk (no restart). A configuration that cannot be read, or a plugin that cannot be imported,
is a diagnostic at the top of the spec.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

from specc.config import Options
from specc.errors import Diagnostic, Span, SpecError, UsageError
from specc.lsp.analysis import Analysis, analyse


class Workspace:
    """Analyses by URI, and the configurations met so far."""

    def __init__(self, root: Optional[str] = None) -> None:
        self.root = root
        self.analyses: dict[str, Analysis] = {}
        #: The editor's text of every open document, by real path: a spec that imports or
        #: extends an open file reads this text, saved or not.
        self.texts: dict[str, str] = {}
        self._reals: dict[str, str] = {}            # uri -> real path
        #: Each document's last analysis with a valid spec (completion offers its names
        #: while the text being typed does not validate).
        self.valid: dict[str, Analysis] = {}
        self._plugins: dict[Optional[Path], ExitStack] = {}
        self._configs: dict[Optional[Path], Options] = {}
        self._problems: dict[Optional[Path], list[Diagnostic]] = {}
        self._stamps: dict[Optional[Path], tuple] = {}

    def options_for(self, file: str) -> tuple[Options, list[Diagnostic]]:
        """The options for a spec file, its plugins imported; the problems in reading them."""
        from specc import config

        start = file if os.path.isabs(file) else (self.root or os.getcwd())
        try:
            source = config.find(config.start_of([start]))
        except SpecError as exc:
            return Options(), list(exc.diagnostics)
        if source in self._configs and self._stamps[source] != _stamp(
                source, self._configs[source]):
            self._plugins.pop(source).close()       # changed on disk: read it again
            del self._configs[source]
        if source not in self._configs:
            stack = self._plugins[source] = ExitStack()
            try:
                options = config.read(source) if source is not None else Options()
                stack.enter_context(config.plugins_imported(options))
                self._problems[source] = []
            except SpecError as exc:
                options = Options()
                self._problems[source] = list(exc.diagnostics)
            except UsageError as exc:
                options = Options()
                self._problems[source] = [Diagnostic(Span(file), str(exc), "config")]
            self._configs[source] = options
            self._stamps[source] = _stamp(source, options)
        return self._configs[source], self._problems[source]

    def update(self, uri: str, file: str, source: str, encoding: str = "utf-16") -> Analysis:
        """Analyse the document's new text; the analysis replaces the old one."""
        real = self._reals[uri] = os.path.realpath(file)
        self.texts[real] = source
        options, problems = self.options_for(file)
        result = analyse(source, file, options, encoding,
                         {r: t for r, t in self.texts.items() if r != real})
        if problems:
            result.diagnostics = [*problems, *result.diagnostics]
        self.analyses[uri] = result
        if result.spec is not None:
            self.valid[uri] = result
        return result

    def dependents(self, uri: str) -> list[str]:
        """The other open documents that read this one through `imports:` or `extends:`
        (directly or through other files): to analyse again when its text changes."""
        real = self._reals.get(uri)
        return [other for other, result in self.analyses.items()
                if other != uri and real is not None and real in result.reads]

    def close(self, uri: str) -> None:
        """Forget the document; a spec that reads it reads the file on disk again."""
        self.analyses.pop(uri, None)
        self.valid.pop(uri, None)
        real = self._reals.pop(uri, None)
        if real is not None and real not in self._reals.values():
            self.texts.pop(real, None)

    def get(self, uri: str) -> Optional[Analysis]:
        return self.analyses.get(uri)

    def shutdown(self) -> None:
        while self._plugins:
            self._plugins.popitem()[1].close()      # the latest configuration first


def _stamp(source: Optional[Path], options: Options) -> tuple:
    """When pyproject.toml and the configuration's one-file plugins last changed on disk."""
    files = [source, *(Path(p) for p in options.plugins if p.endswith(".py"))] \
        if source is not None else []
    stamps = []
    for path in files:
        try:
            info = os.stat(path)
            stamps.append((str(path), info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append((str(path), None, None))
    return tuple(stamps)
