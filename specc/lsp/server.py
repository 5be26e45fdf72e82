"""`specc lsp`: the language server (pygls), over standard input and output.

Each request is answered from the analysis of the document's latest text
(specc.lsp.workspace); the features live in their own modules and this one only wires them
to the protocol.
"""
from __future__ import annotations

from typing import Any, Optional

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from specc import __version__
from specc.lsp.analysis import Analysis
from specc.lsp.workspace import Workspace
from specc.lsp.yamlindex import Pos


class SpecServer(LanguageServer):
    """A pygls server with the specc workspace beside pygls's own."""

    def __init__(self) -> None:
        super().__init__("specc", __version__,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.specs = Workspace()

    def analysis(self, uri: str) -> Optional[Analysis]:
        return self.specs.get(uri)

    def refresh(self, uri: str, dependents: bool = True) -> None:
        """Analyse the document's current text and publish its diagnostics; then the same
        for the open specs that import or extend it (they read its unsaved text)."""
        self._publish(uri)
        if dependents:
            for other in self.specs.dependents(uri):
                self._publish(other)

    def _publish(self, uri: str) -> None:
        from specc.lsp.diagnostics import diagnostics

        document = self.workspace.get_text_document(uri)
        file = to_fs_path(uri) or uri
        agreed = self.workspace.position_encoding or lsp.PositionEncodingKind.Utf16
        encoding = str(getattr(agreed, "value", agreed))
        result = self.specs.update(uri, file, document.source, encoding)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, diagnostics=diagnostics(result, uri), version=document.version))
        result.warm()           # after publishing: shapes ready for the first hover


server = SpecServer()


@server.feature(lsp.INITIALIZED)
def _initialized(ls: SpecServer, params: lsp.InitializedParams) -> None:
    ls.specs.root = ls.workspace.root_path


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: SpecServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def _did_change(ls: SpecServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: SpecServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    readers = ls.specs.dependents(uri)          # they read the file on disk from now on
    ls.specs.close(uri)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    for other in readers:
        ls.refresh(other, dependents=False)


def _at(ls: SpecServer, uri: str, position: lsp.Position) -> tuple[Optional[Analysis], Pos]:
    """The document's analysis, and the position in code points."""
    analysis = ls.analysis(uri)
    if analysis is None:
        return None, (0, 0)
    return analysis, analysis.text.from_utf16((position.line, position.character))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(
    trigger_characters=[" ", "[", ",", "{", "."]))
def _completion(ls: SpecServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    from specc.lsp.completion import complete

    uri = params.text_document.uri
    analysis, pos = _at(ls, uri, params.position)
    items = complete(analysis, pos, ls.specs.valid.get(uri)) if analysis is not None else []
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def _hover(ls: SpecServer, params: lsp.HoverParams) -> Optional[lsp.Hover]:
    from specc.lsp.hover import hover

    uri = params.text_document.uri
    analysis, pos = _at(ls, uri, params.position)
    return hover(analysis, pos, ls.specs.valid.get(uri)) if analysis is not None else None


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def _definition(ls: SpecServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
    from specc.lsp.symbols import locations, symbol_at

    uri = params.text_document.uri
    analysis, pos = _at(ls, uri, params.position)
    symbol = symbol_at(analysis, pos) if analysis is not None else None
    return locations(analysis, uri, symbol, definition=True, texts=ls.specs.texts) \
        if symbol is not None else []


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
def _references(ls: SpecServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
    from specc.lsp.symbols import locations, symbol_at

    uri = params.text_document.uri
    analysis, pos = _at(ls, uri, params.position)
    symbol = symbol_at(analysis, pos) if analysis is not None else None
    if symbol is None:
        return []
    return locations(analysis, uri, symbol,
                     definition=None if params.context.include_declaration else False,
                     texts=ls.specs.texts)


@server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
def _prepare_rename(ls: SpecServer, params: lsp.PrepareRenameParams) -> Optional[lsp.Range]:
    from specc.lsp.symbols import prepare

    analysis, pos = _at(ls, params.text_document.uri, params.position)
    return prepare(analysis, pos) if analysis is not None else None


@server.feature(lsp.TEXT_DOCUMENT_RENAME, lsp.RenameOptions(prepare_provider=True))
def _rename(ls: SpecServer, params: lsp.RenameParams) -> Optional[lsp.WorkspaceEdit]:
    from specc.lsp.symbols import rename

    uri = params.text_document.uri
    analysis, pos = _at(ls, uri, params.position)
    return rename(analysis, uri, pos, params.new_name, ls.specs.texts) \
        if analysis is not None else None


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
    code_action_kinds=[lsp.CodeActionKind.QuickFix]))
def _code_action(ls: SpecServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    from specc.lsp.diagnostics import SOURCE
    from specc.lsp.fixes import fixes

    uri = params.text_document.uri
    analysis = ls.analysis(uri)
    if analysis is None:
        return []
    return fixes(analysis, uri, [d for d in params.context.diagnostics if d.source == SOURCE])


@server.feature(lsp.SHUTDOWN)
def _shutdown(ls: SpecServer, params: Any) -> None:
    ls.specs.shutdown()


def serve() -> None:
    """Serve over standard input and output until the client exits."""
    server.start_io()
