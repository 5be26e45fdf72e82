"""The language server (`specc lsp`), driven over stdio by a real LSP client (pytest-lsp):
diagnostics equal `specc validate`'s, completion, hover, definitions, references, rename and
quick fixes, on the example specs and broken ones."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

from helpers import ROOT, SPECS  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "specc", "lsp"],
    server_env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=ROOT.as_uri(), workspace_folders=[lsp.WorkspaceFolder(ROOT.as_uri(), "specc")]))
    yield
    await lsp_client.shutdown_session()


_VERSIONS: dict[str, int] = {}


async def open_text(client: LanguageClient, path: Path, text: str) -> list[lsp.Diagnostic]:
    """Open (or change) `path` with `text`; the diagnostics the server publishes for it."""
    uri = path.as_uri()
    version = _VERSIONS.get(uri, 0) + 1
    _VERSIONS[uri] = version
    waiter = client.protocol.wait_for_notification_async(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    if version == 1:
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri, "yaml", version, text)))
    else:
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri, version),
            [lsp.TextDocumentContentChangeWholeDocument(text)]))
    while True:
        params = await asyncio.wait_for(waiter, 60)
        if params.uri == uri and params.version == version:
            return list(params.diagnostics)
        waiter = client.protocol.wait_for_notification_async(
            lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)


def _examples() -> list[Path]:
    return sorted([*SPECS.glob("*.yaml"), *SPECS.glob("*/*.yaml")])


def _broken() -> list[Path]:
    out = []
    for path in sorted((ROOT / "tests" / "golden" / "invalid").glob("*.yaml")):
        try:
            path.read_text(encoding="utf-8-sig")       # an editor opens UTF-8 text only
        except UnicodeDecodeError:
            continue
        out.append(path)
    return out


@pytest.fixture(scope="module")
def validated() -> dict[str, list[dict]]:
    """`specc validate --format json` on every file the tests open: file -> diagnostics."""
    import json
    import subprocess

    files = [str(p) for p in [*_examples(), *_broken()]]
    run = subprocess.run([sys.executable, "-m", "specc", "validate", "--format", "json", "-j",
                          "1", *files], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode in (0, 1), run.stderr
    out: dict[str, list[dict]] = {f: [] for f in files}
    for d in json.loads(run.stdout):
        out[d["file"]].append(d)
    return out


def _start(d: lsp.Diagnostic | lsp.DiagnosticRelatedInformation) -> tuple[int, int]:
    r = d.range if isinstance(d, lsp.Diagnostic) else d.location.range
    return r.start.line + 1, r.start.character + 1


@pytest.mark.parametrize("path", [*_examples(), *_broken()], ids=lambda p: p.name)
async def test_diagnostics_are_specc_validate(client: LanguageClient, validated, path) -> None:
    """Every error and warning `specc validate` gives, at the same place, with its code,
    message and notes (as related information)."""
    got = await open_text(client, path, path.read_text(encoding="utf-8-sig"))
    want = validated[str(path)]
    assert [(_start(d), d.code, d.message, d.severity) for d in got] == [
        ((w["line"], w["column"]), w["code"], w["message"], _SEVERITY[w["severity"]])
        for w in want]
    for d, w in zip(got, want):
        assert [(_start(r), r.message) for r in d.related_information or ()] == [
            ((n["line"], n["column"]), n["message"]) for n in w.get("notes", ())]
        lines = path.read_text(encoding="utf-8-sig").split("\n")
        line = lines[d.range.start.line] if d.range.start.line < len(lines) else ""
        assert d.range.end != d.range.start or not line[d.range.start.character:].strip()


_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}
