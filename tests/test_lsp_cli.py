"""`specc lsp` on the command line: without the `lsp` extra it refuses in one line."""
from __future__ import annotations

import specc.cli as cli


def test_lsp_without_pygls_is_one_line(monkeypatch, capsys) -> None:
    real = cli._findable
    monkeypatch.setattr(cli, "_findable", lambda m: m != "pygls" and real(m))
    assert cli.main(["lsp"]) == 2
    err = capsys.readouterr().err
    assert err == ('specc: error: specc lsp needs pygls, which this install lacks: '
                   'pip install "specc-keras[lsp]"\n')
