"""One open spec, analysed: specc's own pipeline run on the editor's text.

The same stages as `specc validate` (specc.validation._check_one): load the text, validate the
document with the project's size budget, and for a valid spec its warnings (specc.rules). The
analysis keeps what the other features read: the diagnostics, the validated spec (and the
flat document a format 2 spec expanded to), and the text's index of ranges.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, Optional

from specc.config import Options
from specc.errors import Diagnostic, Span, SpecError
from specc.lsp.yamlindex import Index, Text, index


#: A YAML document is taken for a spec when a top-level key of a spec starts one of its lines,
#: or its yaml-language-server line names specc's schema: editors start the server for every
#: YAML file, and a CI workflow or a compose file should get no "missing `specc: 1`".
_SPEC: Final = re.compile(r"^\ufeff?(?:(?:specc|inputs|layers|outputs|blocks)[ \t]*:|"
                          r"#\s*yaml-language-server:.*specc)", re.MULTILINE)


def is_spec(source: str) -> bool:
    return _SPEC.search(source) is not None


@dataclass
class Analysis:
    """What the server knows about one version of one document."""

    file: str                      # the file name diagnostics carry
    source: str
    text: Text
    index: Optional[Index]         # None when the text is not well-formed YAML
    diagnostics: list[Diagnostic] = field(default_factory=list)
    spec: Any = None               # the validated Spec, None when the spec has errors
    options: Options = field(default_factory=Options)
    #: The real paths of the files its imports and base asked for (re-analysed when one of
    #: them changes in the editor), and the editor's texts it was analysed with.
    reads: frozenset[str] = frozenset()
    open_texts: dict[str, str] = field(default_factory=dict, repr=False)
    _facts: Any = field(default=None, repr=False)
    _imported: Optional[dict] = field(default=None, repr=False)

    @property
    def data(self) -> Any:
        """The source's plain data (scalars as strings), or None."""
        return self.index.data if self.index is not None else None

    @property
    def facts(self) -> Any:
        """specc.lsp.facts.Facts of the valid spec (made on first use), or None."""
        if self.spec is None:
            return None
        if self._facts is None:
            from specc.lsp.facts import Facts

            self._facts = Facts(self.spec)
        return self._facts

    @property
    def imported(self) -> dict[str, tuple[Any, Span]]:
        """Blocks from other files (imports, a base spec): name -> (definition, its place);
        read on first use, off the diagnostics' path."""
        if self._imported is None:
            from specc.loader import load_text

            try:
                self._imported = imported_blocks(load_text(self.source, self.file),
                                                 self.open_texts)
            except SpecError:
                self._imported = {}
        return self._imported

    def warm(self) -> None:
        """Compute now what hover reads: a valid spec's shapes, counts and reads, and the
        blocks of the files it imports."""
        self.imported  # noqa: B018 - cached on first access
        facts = self.facts
        if facts is not None:
            facts.sizes, facts.reads  # noqa: B018 - cached on first access

    @property
    def flat(self) -> Any:
        """The document the spec was validated from (format 2: the expanded one)."""
        return self.spec.document if self.spec is not None else None


def analyse(source: str, file: str, options: Options, encoding: str = "utf-16",
            open_texts: Optional[dict[str, str]] = None) -> Analysis:
    """Validate `source` as the spec file `file` (plugins already imported by the caller),
    as `specc validate` does (specc.validation._check_one): a block library is checked on its
    own, a spec validated with its imports and base. A document that is not a spec
    (`is_spec`) is indexed only. `encoding`: the protocol's position encoding agreed with the
    client; `open_texts`: the editor's texts of other files by real path, read instead of
    the disk where the spec imports or extends them."""
    from specc.compose import OpenFiles, check_library, is_library
    from specc.loader import load_text
    from specc.validation import validate_document

    texts = dict(open_texts or {})
    result = Analysis(file, source, Text(source, encoding), index(source), options=options,
                      open_texts=texts)
    if not is_spec(source):
        return result
    open_files = OpenFiles(texts)
    try:
        doc = load_text(source, file)
        if is_library(doc.data):
            result.diagnostics = check_library(doc, open_files)
            return result
        spec = validate_document(doc, options.overrides, options.limits, open_files)
    except SpecError as exc:
        result.diagnostics = list(exc.diagnostics)
        return result
    finally:
        result.reads = frozenset(open_files.asked)
    from specc.rules import spec_warnings

    result.spec = spec
    result.diagnostics = spec_warnings(spec)
    return result


def imported_blocks(doc: Any, open_texts: Optional[dict[str, str]] = None
                    ) -> dict[str, tuple[Any, Span]]:
    """The blocks a spec gets from other files (`imports:`, `extends:`): name -> (its
    definition, where it is written); {} when there are none or they cannot be read (the
    validation reports why). `open_texts` as for `analyse`."""
    from specc.compose import OpenFiles, compose, uses_files

    if not uses_files(doc.data):
        return {}
    try:
        composed = compose(doc, OpenFiles(dict(open_texts or {})))
    except SpecError:
        return {}
    blocks = composed.data.get("blocks")
    out = {}
    for name, block in (blocks if isinstance(blocks, dict) else {}).items():
        where = composed.key_span(("blocks", name))
        if where.file != doc.file:
            out[name] = (block, where)
    return out
