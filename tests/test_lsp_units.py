"""`specc lsp` without the protocol: the command refuses in one line without the `lsp` extra;
columns convert to each position encoding a client may choose (tests/test_lsp.py drives the
server itself)."""
from __future__ import annotations

import specc.cli as cli
import specc.cli.lsp as command


def test_lsp_without_pygls_is_one_line(monkeypatch, capsys) -> None:
    real = command.findable
    monkeypatch.setattr(command, "findable", lambda m: m != "pygls" and real(m))
    assert cli.main(["lsp"]) == 2
    err = capsys.readouterr().err
    assert err == ('specc: error: specc lsp needs pygls, which this install lacks: '
                   'pip install "specc-keras[lsp]"\n')


def test_columns_in_each_position_encoding() -> None:
    import pytest

    pytest.importorskip("pygls")
    from specc.lsp.yamlindex import Text

    line = 'a: "é😀x"'                   # é: 2 UTF-8 bytes, 1 UTF-16 unit; 😀: 4 and 2
    x = line.index("x")
    for encoding, units in (("utf-8", len(line[:x].encode("utf-8"))),
                            ("utf-16", len(line[:x].encode("utf-16-le")) // 2),
                            ("utf-32", x)):
        text = Text(line, encoding)
        assert text.to_utf16((0, x)) == (0, units)
        assert text.from_utf16((0, units)) == (0, x)
