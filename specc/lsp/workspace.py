"""The open specs and the project configuration they are read with.

Each document is analysed with the options of its nearest pyproject.toml's [tool.specc]
(specc.config, as `specc validate` finds it from the spec's folder): the size budget, and the
plugins, imported once per configuration and kept for the server's life. A configuration that
cannot be read, or a plugin that cannot be imported, is a diagnostic at the top of the spec.
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
        #: Each document's last analysis with a valid spec (completion offers its names
        #: while the text being typed does not validate).
        self.valid: dict[str, Analysis] = {}
        self._plugins = ExitStack()
        self._configs: dict[Optional[Path], Options] = {}
        self._problems: dict[Optional[Path], list[Diagnostic]] = {}

    def options_for(self, file: str) -> tuple[Options, list[Diagnostic]]:
        """The options for a spec file, its plugins imported; the problems in reading them."""
        from specc import config

        start = file if os.path.isabs(file) else (self.root or os.getcwd())
        try:
            source = config.find(config.start_of([start]))
        except SpecError as exc:
            return Options(), list(exc.diagnostics)
        if source not in self._configs:
            try:
                options = config.read(source) if source is not None else Options()
                self._plugins.enter_context(config.plugins_imported(options))
                self._problems[source] = []
            except SpecError as exc:
                options = Options()
                self._problems[source] = list(exc.diagnostics)
            except UsageError as exc:
                options = Options()
                self._problems[source] = [Diagnostic(Span(file), str(exc), "config")]
            self._configs[source] = options
        return self._configs[source], self._problems[source]

    def update(self, uri: str, file: str, source: str, encoding: str = "utf-16") -> Analysis:
        """Analyse the document's new text; the analysis replaces the old one."""
        options, problems = self.options_for(file)
        result = analyse(source, file, options, encoding)
        if problems:
            result.diagnostics = [*problems, *result.diagnostics]
        self.analyses[uri] = result
        if result.spec is not None:
            self.valid[uri] = result
        return result

    def close(self, uri: str) -> None:
        self.analyses.pop(uri, None)
        self.valid.pop(uri, None)

    def get(self, uri: str) -> Optional[Analysis]:
        return self.analyses.get(uri)

    def shutdown(self) -> None:
        self._plugins.close()
