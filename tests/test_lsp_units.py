"""`specc lsp` without the protocol: the command refuses in one line without the `lsp` extra;
columns convert to each position encoding a client may choose (tests/test_lsp.py drives the
server itself)."""
from __future__ import annotations

import pytest

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


@pytest.mark.slow          # ~30 s on 2 loaded cores: a validation per line of every example
def test_every_feature_answers_anywhere_in_the_examples() -> None:
    """Completion, hover, definitions and rename's range at the middle and the end of every
    line of every example spec, and after each line is cut there (half-typed text): an
    answer or none, never an exception (the server would answer an error instead)."""
    pytest.importorskip("pygls")
    from helpers import ROOT
    from specc.lsp.completion import complete
    from specc.lsp.hover import hover
    from specc.lsp.symbols import occurrences, prepare, symbol_at
    from specc.lsp.workspace import Workspace

    ws = Workspace(str(ROOT))
    try:
        for path in sorted((ROOT / "specs").rglob("*.yaml")):
            text = path.read_text()
            uri, file = path.as_uri(), str(path)
            lines = text.split("\n")
            whole = ws.update(uri, file, text)
            for i, line in enumerate(lines):
                cut = len(line) // 2            # the line half typed, the cursor at its end
                half = ws.update(uri, file, "\n".join([*lines[:i], line[:cut], *lines[i + 1:]]))
                for a, pos in ((whole, (i, cut)), (whole, (i, len(line))), (half, (i, cut))):
                    complete(a, pos, ws.valid.get(uri))
                    hover(a, pos, ws.valid.get(uri))
                    symbol = symbol_at(a, pos)
                    if symbol is not None:
                        assert occurrences(a, symbol) or symbol.kind == "block"
                    prepare(a, pos)
    finally:
        ws.shutdown()


def test_a_spec_reads_the_unsaved_text_of_an_open_library(tmp_path) -> None:
    """A spec that imports a library open in the editor is analysed with the library's
    unsaved text; a change there re-analyses the spec; closing the library goes back to the
    file on disk."""
    from specc.lsp.workspace import Workspace

    (tmp_path / "pyproject.toml").write_text("[tool.specc]\n")
    lib = tmp_path / "lib.yaml"
    lib.write_text("specc: 2\nblocks:\n  mlp:\n    layers:\n"
                   "      - {name: d, type: Dense, units: 4}\n")
    spec = tmp_path / "model.yaml"
    spec.write_text("specc: 2\nname: m\nimports: [lib.yaml]\ninputs:\n  x: {shape: [3]}\n"
                    "layers:\n  - {name: a, use: mlp}\n"
                    "  - {name: out, type: Dense, units: 2, activation: softmax}\n"
                    "outputs: [out]\nloss: categorical_crossentropy\n")
    ws = Workspace(str(tmp_path))
    try:
        _unsaved_library_steps(ws, spec, lib)
    finally:
        ws.shutdown()


def _unsaved_library_steps(ws, spec, lib) -> None:
    spec_uri, lib_uri = spec.as_uri(), lib.as_uri()
    assert ws.update(spec_uri, str(spec), spec.read_text()).spec is not None
    assert ws.dependents(spec_uri) == []
    renamed = lib.read_text().replace("mlp:", "dense_block:")     # typed, not saved
    ws.update(lib_uri, str(lib), renamed)
    assert ws.dependents(lib_uri) == [spec_uri]
    again = ws.update(spec_uri, str(spec), spec.read_text())
    assert again.spec is None
    assert [(d.span.line, d.message) for d in again.diagnostics] == [
        (7, "unknown block 'mlp' (blocks: dense_block)")]
    ws.close(lib_uri)                            # not saved: the file on disk is read again
    assert ws.update(spec_uri, str(spec), spec.read_text()).spec is not None
    assert ws.dependents(lib_uri) == []


def test_a_changed_configuration_or_plugin_file_is_read_again(tmp_path) -> None:
    """pyproject.toml's [tool.specc] and its one-file plugins are read again when they change
    on disk: the next analysis uses them, no server restart."""
    import os

    from specc.lsp.workspace import Workspace

    project, plugin = tmp_path / "pyproject.toml", tmp_path / "kinds.py"
    kind = ("import pydantic\nimport specc\n\n\nclass Rate(pydantic.BaseModel):\n"
            "    rate: float\n\n\n"
            "@specc.register_penalty({name!r}, params=Rate, formula='r · sum a')\n"
            "def _term(a, clause):\n    from keras import ops\n"
            "    return clause.rate * ops.sum(a)\n")
    plugin.write_text(kind.format(name="first_kind"))
    spec = tmp_path / "model.yaml"
    spec.write_text("specc: 1\nname: m\ninputs:\n  x: {shape: [3]}\nlayers:\n"
                    "  - {name: h, type: Dense, units: 4}\n"
                    "  - {name: out, type: Dense, units: 2, activation: softmax}\n"
                    "outputs: [out]\nloss: categorical_crossentropy\n"
                    "penalties:\n  - {name: p, layer: h, kind: first_kind, rate: 0.1}\n")

    def changed(path, text: str) -> None:          # a later mtime whatever the clock's grain
        path.write_text(text)
        info = os.stat(path)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))

    changed(project, '[tool.specc]\nplugins = ["kinds.py"]\nmax_params = 20\n')
    ws = Workspace(str(tmp_path))
    try:
        def codes() -> list[str]:
            result = ws.update(spec.as_uri(), str(spec), spec.read_text())
            return sorted(d.code for d in result.diagnostics if d.severity == "error")

        assert codes() == ["budget"]                    # 16 + 10 parameters > 20
        changed(project, '[tool.specc]\nplugins = ["kinds.py"]\nmax_params = 1000\n')
        assert codes() == []
        changed(plugin, kind.format(name="second_kind"))
        assert codes() == ["unknown-kind"]              # first_kind is gone with the old file
    finally:
        ws.shutdown()
    import specc.penalties as penalties
    assert not {"first_kind", "second_kind"} & set(penalties._PLUGINS)  # unregistered


def test_renaming_a_block_in_its_library_reaches_every_spec_that_reads_it(tmp_path) -> None:
    """From the library: the definition, and every `use:` in the specs that import it or
    extend one that does; a spec that reads another library keeps its own `mlp`."""
    pytest.importorskip("pygls")
    from specc.lsp.symbols import locations, rename, symbol_at
    from specc.lsp.workspace import Workspace

    (tmp_path / "pyproject.toml").write_text("[tool.specc]\n")
    block = "specc: 2\nblocks:\n  mlp:\n    layers:\n      - {name: d, type: Dense, units: 4}\n"
    (tmp_path / "lib.yaml").write_text(block)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "lib.yaml").write_text(block)
    spec = ("specc: 2\nname: m\nimports: [{lib}]\ninputs:\n  x: {{shape: [3]}}\nlayers:\n"
            "  - {{name: a, use: mlp}}\n  - {{name: b, use: mlp}}\n"
            "  - {{name: out, type: Dense, units: 2, activation: softmax}}\n"
            "outputs: [out]\nloss: categorical_crossentropy\n")
    (tmp_path / "a.yaml").write_text(spec.format(lib="lib.yaml"))
    (tmp_path / "other.yaml").write_text(spec.format(lib="other/lib.yaml"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text(
        "specc: 2\nextends: ../a.yaml\nname: c\nlayers:\n  - {name: z, use: mlp, after: b}\n")
    lib = tmp_path / "lib.yaml"
    ws = Workspace(str(tmp_path))
    try:
        text = block.replace("units: 4", "units: 8")           # unsaved: the editor's text
        analysis = ws.update(lib.as_uri(), str(lib), text)
        pos = (2, 3)                                            # on `mlp:`
        assert symbol_at(analysis, pos).name == "mlp"
        edit = rename(analysis, lib.as_uri(), pos, "dense_block", ws.texts)
        lines = {uri.rsplit("/", 1)[-1]: sorted(e.range.start.line for e in edits)
                 for uri, edits in edit.changes.items()}
        assert lines == {"lib.yaml": [2], "a.yaml": [6, 7], "c.yaml": [4]}
        refs = locations(analysis, lib.as_uri(), symbol_at(analysis, pos), definition=False,
                         texts=ws.texts)
        assert len(refs) == 3
    finally:
        ws.shutdown()
