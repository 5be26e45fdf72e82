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
            lsp.VersionedTextDocumentIdentifier(version=version, uri=uri),
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
    want = [] if path.name in NOT_SPECS else validated[str(path)]
    assert [(_start(d), d.code, d.message, d.severity) for d in got] == [
        ((w["line"], w["column"]), w["code"], w["message"], _SEVERITY[w["severity"]])
        for w in want]
    for d, w in zip(got, want):
        assert [(_start(r), r.message) for r in d.related_information or ()] == [
            ((n["line"], n["column"]), n["message"]) for n in w.get("notes", ())]
        lines = path.read_text(encoding="utf-8-sig").split("\n")
        line = lines[d.range.start.line] if d.range.start.line < len(lines) else ""
        assert d.range.end != d.range.start or not line[d.range.start.character:].strip()


#: YAML files the server does not take for specs: no top-level key of a spec (editors start
#: the server for every YAML file; a CI workflow should get no "missing `specc: 1`").
NOT_SPECS = {"yaml_comments_only.yaml", "yaml_empty.yaml", "yaml_top_level_list.yaml"}


async def test_other_yaml_files_get_no_diagnostics(client: LanguageClient, tmp_path) -> None:
    workflow = "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
    assert await open_text(client, tmp_path / "ci.yaml", workflow) == []
    [missing] = await open_text(client, tmp_path / "spec.yaml", "name: m\nlayers: []\n")
    assert missing.code == "version"


_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}


CURSOR = "‸"


def _cursor(text: str) -> tuple[str, lsp.Position]:
    """The text without its cursor mark, and the mark's position."""
    before = text[:text.index(CURSOR)]
    line = before.count("\n")
    return text.replace(CURSOR, "", 1), lsp.Position(line, len(before) - before.rfind("\n") - 1)


def _edit(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert old in text
    return text.replace(old, new, 1)


async def complete(client: LanguageClient, path: Path, text: str) -> list[lsp.CompletionItem]:
    text, pos = _cursor(text)
    await open_text(client, path, text)
    result = await client.text_document_completion_async(lsp.CompletionParams(
        lsp.TextDocumentIdentifier(path.as_uri()), pos))
    items = result.items if isinstance(result, lsp.CompletionList) else result or []
    for item in items:                   # each replaces what was typed, up to the cursor
        assert item.text_edit.range.end == pos
    return items


def _labels(items: list[lsp.CompletionItem]) -> list[str]:
    return [i.label for i in items]


async def test_diagnostics_follow_changes(client: LanguageClient, tmp_path) -> None:
    path = tmp_path / "edited.yaml"
    good = (SPECS / "cnn_sparsity.yaml").read_text()
    assert await open_text(client, path, good) == []
    bad = good.replace("layer: conv2,", "layer: conv3,")
    [d] = await open_text(client, path, bad)
    assert d.code == "unknown-ref" and "did you mean 'conv2'?" in d.message
    line = bad.split("\n").index(next(l for l in bad.split("\n") if "layer: conv3" in l))
    assert (d.range.start.line, d.range.start.character) == (line, bad.split("\n")[line].index(
        "conv3"))
    assert d.range.end.character - d.range.start.character == len("conv3")
    assert await open_text(client, path, good) == []


async def test_a_spec_follows_the_unsaved_edits_of_its_library(client: LanguageClient,
                                                              tmp_path) -> None:
    """Renaming a block in an open library, unsaved, publishes the importing spec's error; the
    spec reads the file on disk again once the library is closed."""
    lib, spec = tmp_path / "lib.yaml", tmp_path / "model.yaml"
    lib.write_text("specc: 2\nblocks:\n  mlp:\n    layers:\n"
                   "      - {name: d, type: Dense, units: 4}\n")
    spec.write_text("specc: 2\nname: m\nimports: [lib.yaml]\ninputs:\n  x: {shape: [3]}\n"
                    "layers:\n  - {name: a, use: mlp}\n"
                    "  - {name: out, type: Dense, units: 2, activation: softmax}\n"
                    "outputs: [out]\nloss: categorical_crossentropy\n")
    assert await open_text(client, spec, spec.read_text()) == []

    async def spec_diagnostics(done) -> list[lsp.Diagnostic]:
        # what the client last received for the spec (one waiter per method: poll instead)
        for _ in range(600):
            if done(found := list(client.diagnostics.get(spec.as_uri(), []))):
                return found
            await asyncio.sleep(0.1)
        raise TimeoutError("no new diagnostics for the spec")

    assert await open_text(client, lib, lib.read_text().replace("mlp:", "dense:")) == []
    [d] = await spec_diagnostics(bool)
    assert (d.range.start.line, d.message) == (6, "unknown block 'mlp' (blocks: dense)")
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(
        lsp.TextDocumentIdentifier(lib.as_uri())))
    _VERSIONS.pop(lib.as_uri())
    assert await spec_diagnostics(lambda found: not found) == []


async def test_complete_layer_types_and_arguments(client: LanguageClient, tmp_path) -> None:
    path = tmp_path / "types.yaml"
    spec = SPECS / "cnn_sparsity.yaml"
    types = await complete(client, path, _edit(spec, "type: Conv2D, filters: 16",
                                               f"type: Con{CURSOR}"))
    assert {"Conv1D", "Conv2D", "Conv3D", "Dense", "LSTM"} <= set(_labels(types))
    conv = next(i for i in types if i.label == "Conv2D")
    assert "keras.layers.Conv2D" in conv.documentation.value
    assert "filters" in conv.documentation.value and "kernel_size" in conv.documentation.value
    args = await complete(client, path, _edit(spec, "type: Dense, units: 5,",
                                              f"type: Dense, units: 5, {CURSOR}"))
    labels = _labels(args)
    assert {"activation", "use_bias", "kernel_initializer", "from"} <= set(labels)
    assert "units" not in labels and "name" not in labels     # already written
    use_bias = next(i for i in args if i.label == "use_bias")
    assert use_bias.documentation.value == "Whether the layer adds a bias vector."
    assert use_bias.text_edit.new_text == "use_bias: "
    padding = await complete(client, path, _edit(spec, "kernel_size: 3, activation: relu}",
                                                 f"kernel_size: 3, padding: {CURSOR}}}"))
    assert _labels(padding) == ["valid", "same"]


async def test_complete_names_blocks_and_params(client: LanguageClient, tmp_path) -> None:
    path = tmp_path / "names.yaml"
    spec = SPECS / "cnn_sparsity.yaml"
    refs = await complete(client, path, _edit(spec, "{name: pool, type: GlobalAveragePooling2D}",
                                              f"{{name: pool, type: GlobalAveragePooling2D, "
                                              f"from: [conv1, c{CURSOR}]}}"))
    assert sorted(_labels(refs)) == ["conv1", "conv2", "image", "probs"]   # not `pool` itself
    layer = await complete(client, path, _edit(spec, "layer: conv2,", f"layer: {CURSOR},"))
    assert sorted(_labels(layer)) == ["conv1", "conv2", "image", "pool", "probs"]
    outputs = await complete(client, path, _edit(spec, "outputs: [probs]", f"outputs: [{CURSOR}]"))
    assert "probs" in _labels(outputs)
    resnet = SPECS / "resnet50.yaml"          # its blocks come from specs/blocks/resnet.yaml
    blocks = await complete(client, resnet, _edit(resnet, "{name: conv3, use: stage,",
                                                  f"{{name: conv3, use: {CURSOR}"))
    assert sorted(_labels(blocks)) == ["bottleneck", "stage"]
    params = await complete(client, resnet, _edit(
        resnet, "with: {filters: 128, blocks: 4}", f"with: {{filters: 128, {CURSOR}}}"))
    assert sorted(_labels(params)) == ["blocks", "stride"]
    await open_text(client, resnet, resnet.read_text())
    library = SPECS / "blocks" / "resnet.yaml"
    local = await complete(client, library, _edit(
        library, "{name: bn1, type: BatchNormalization, epsilon: 1.001e-5}",
        f"{{name: bn1, type: BatchNormalization, epsilon: 1.001e-5, from: {CURSOR}}}"))
    assert sorted(_labels(local)) == sorted(["x", "proj", "proj_bn", "conv1", "relu1", "conv2",
                                             "bn2", "relu2", "conv3", "bn3", "add", "out"])
    await open_text(client, library, library.read_text())


async def test_complete_kinds_losses_metrics(client: LanguageClient, tmp_path) -> None:
    path = tmp_path / "words.yaml"
    spec = SPECS / "cnn_sparsity.yaml"
    kinds = await complete(client, path, _edit(spec, "kind: mean_abs", f"kind: {CURSOR}"))
    assert _labels(kinds) == ["l1", "l2", "l1_l2", "mean_abs", "kl_sparsity", "decorrelation",
                              "ar", "tar"]
    from specc.penalties import lookup       # the catalog's formula, shown as written there

    assert lookup("mean_abs").formula in next(i for i in kinds
                                              if i.label == "mean_abs").documentation.value
    losses = await complete(client, path, _edit(spec, "loss: categorical_crossentropy",
                                                f"loss: cat{CURSOR}"))
    assert {"categorical_crossentropy", "mse", "binary_crossentropy"} <= set(_labels(losses))
    metrics = await complete(client, path, _edit(spec, "metrics: [accuracy]",
                                                 f"metrics: [acc{CURSOR}"))
    assert {"accuracy", "top_k_categorical_accuracy"} <= set(_labels(metrics))


async def hover_at(client: LanguageClient, path: Path, text: str) -> str:
    """The hover text where the cursor mark is (the text is opened without the mark)."""
    text, pos = _cursor(text)
    await open_text(client, path, text)
    result = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(path.as_uri()), pos))
    return result.contents.value if result is not None else ""


async def test_hover_layer_shape_params_reads_clauses(client: LanguageClient) -> None:
    # conv2 of cnn_sparsity: 3x3 'valid' on (16, 16, 8) -> (14, 14, 16); 3*3*8*16 + 16 weights
    path = SPECS / "cnn_sparsity.yaml"
    text = await hover_at(client, path, _edit(path, "{name: conv2,", f"{{name: con{CURSOR}v2,"))
    assert "**conv2** · Conv2D" in text
    assert f"(batch, 14, 14, 16) · params {3 * 3 * 8 * 16 + 16:,}" in text
    assert "reads: conv1" in text and "penalty `conv2_sparsity`: mean_abs" in text
    on = await hover_at(client, path, _edit(path, "layer: conv2,", f"layer: co{CURSOR}nv2,"))
    assert on == text                                   # a clause's `layer:` is the layer
    ref = await hover_at(client, path, _edit(path, "outputs: [probs]", f"outputs: [pr{CURSOR}obs]"))
    assert f"(batch, 5) · params {16 * 5 + 5}" in ref      # GlobalAveragePooling2D -> 16


async def test_hover_use_clause_argument(client: LanguageClient) -> None:
    from specc.penalties import lookup

    path = SPECS / "resnet50.yaml"
    use = await hover_at(client, path, _edit(path, "{name: conv3, use: stage",
                                             f"{{name: co{CURSOR}nv3, use: stage"))
    # stage conv3: 4 bottlenecks of 10 layers, the first with 2 more (its projection)
    assert "use of block `stage`" in use and "expands to 42 layers" in use
    assert "last: `conv3.block4.out` (batch, 28, 28, 512)" in use
    unet = SPECS / "unet.yaml"                 # block `down` used with repeat: 3
    clause = await hover_at(client, unet, _edit(unet, "{name: energy, layer: add",
                                                f"{{name: ene{CURSOR}rgy, layer: add"))
    assert f"`{lookup('l2').formula}`" in clause
    assert "log keys: `down1.energy`, `down2.energy`, `down3.energy`" in clause
    arg = await hover_at(client, path, _edit(path, "units: 1000", f"un{CURSOR}its: 1000"))
    assert arg == "**units**: Size of the output's last axis."
    library = SPECS / "blocks" / "resnet.yaml"
    block = await hover_at(client, library, _edit(library, "use: bottleneck",
                                                  f"use: bottle{CURSOR}neck"))
    # the parameters as written in the block's definition, and who uses it (stage's `block`)
    assert "params: `filters`: int, `stride`: 1, `project`: false, `rate`: 1.0e-7" in block
    assert "used by: block" in block


def _apply(text: str, edits: list[lsp.TextEdit]) -> str:
    """The text with the edits made (ASCII text: UTF-16 columns are characters)."""
    lines = text.split("\n")
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                    reverse=True):
        assert e.range.start.line == e.range.end.line
        line = lines[e.range.start.line]
        lines[e.range.start.line] = (line[:e.range.start.character] + e.new_text
                                     + line[e.range.end.character:])
    return "\n".join(lines)


def _line_of(text: str, needle: str, occurrence: int = 0) -> int:
    return [i for i, line in enumerate(text.split("\n")) if needle in line][occurrence]


async def test_definition_and_references_respect_block_scopes(client: LanguageClient) -> None:
    path = SPECS / "unet.yaml"
    text = path.read_text()
    marked = _edit(path, "from: [pool, residual]", f"from: [pool, resi{CURSOR}dual]")
    clean, pos = _cursor(marked)
    await open_text(client, path, clean)
    doc = lsp.TextDocumentIdentifier(path.as_uri())
    [target] = await client.text_document_definition_async(lsp.DefinitionParams(doc, pos))
    defined = _line_of(text, "{name: residual, type: Conv2D")       # in block `down`
    assert target.range.start == lsp.Position(defined, text.split("\n")[defined].index("residual"))
    refs = await client.text_document_references_async(lsp.ReferenceParams(
        text_document=doc, position=pos,
        context=lsp.ReferenceContext(include_declaration=True)))
    # block `up` has its own `residual`: not the same name
    assert sorted(r.range.start.line for r in refs) == [defined, pos.line]
    use = lsp.Position(_line_of(text, "use: down"), text.split("\n")[_line_of(text, "use: down")]
                       .index("use: down") + 6)
    [block] = await client.text_document_definition_async(lsp.DefinitionParams(doc, use))
    assert block.range.start == lsp.Position(_line_of(text, "  down:"), 2)


async def test_rename_layer_in_a_block_and_at_top_level(client: LanguageClient, tmp_path) -> None:
    import specc

    path = tmp_path / "unet.yaml"
    text = (SPECS / "unet.yaml").read_text()
    await open_text(client, path, text)
    doc = lsp.TextDocumentIdentifier(path.as_uri())
    line = _line_of(text, "{name: add, type: Add, from: [pool, residual]}")
    pos = lsp.Position(line, text.split("\n")[line].index("add"))
    prepared = await client.text_document_prepare_rename_async(lsp.PrepareRenameParams(doc, pos))
    assert prepared is not None
    edit = await client.text_document_rename_async(lsp.RenameParams(text_document=doc, position=pos, new_name="merge"))
    edits = edit.changes[path.as_uri()]
    assert len(edits) == 2                    # its name and the clause's `layer: add`
    renamed = _apply(text, edits)
    spec = specc.loads(renamed, str(path))
    names = [layer.name for layer in spec.layers]
    assert "down1.merge" in names and "down1.add" not in names and "up1.add" in names
    assert [c.layer for c in spec.penalties][:1] == ["down1.merge"]
    line = _line_of(text, "{name: classes")
    pos = lsp.Position(line, text.split("\n")[line].index("classes"))
    edit = await client.text_document_rename_async(lsp.RenameParams(text_document=doc, position=pos, new_name="logits"))
    assert specc.loads(_apply(text, edit.changes[path.as_uri()]), str(path)).outputs == ["logits"]
    block = lsp.Position(_line_of(text, "  up:"), 3)
    edit = await client.text_document_rename_async(lsp.RenameParams(text_document=doc, position=block,
                                                                  new_name="upsampler"))
    renamed = specc.loads(_apply(text, edit.changes[path.as_uri()]), str(path))
    assert len(renamed.layers) == len(specc.loads(text, str(path)).layers)


def _suggesting() -> list[Path]:
    return [p for p in _broken()
            if "did you mean" in p.with_name(p.name.replace(".yaml", ".errors.txt")).read_text()]


@pytest.mark.parametrize("path", _suggesting(), ids=lambda p: p.name)
async def test_every_did_you_mean_has_a_quick_fix(client: LanguageClient, path: Path) -> None:
    """Each did-you-mean diagnostic offers one fix; made, it takes that diagnostic away."""
    import re

    text = path.read_text(encoding="utf-8-sig")
    diags = [d for d in await open_text(client, path, text) if "did you mean" in d.message]
    assert diags
    for d in diags:
        await open_text(client, path, text)
        doc = lsp.TextDocumentIdentifier(path.as_uri())
        actions = await client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=doc, range=d.range,
            context=lsp.CodeActionContext(diagnostics=[d])))
        assert len(actions) == 1, d.message
        [edit] = actions[0].edit.changes[path.as_uri()]
        wanted = re.search(r"did you mean '([^']+)'", d.message).group(1)
        assert edit.new_text == wanted
        refused = text.split("\n")[edit.range.start.line][
            edit.range.start.character:edit.range.end.character]
        assert f"'{refused}'" in d.message or f'"{refused}"' in d.message
        after = await open_text(client, path, _apply(text, [edit]))
        assert d.message not in [a.message for a in after]
    await open_text(client, path, text)


async def test_quick_fix_for_a_typed_typo(client: LanguageClient, tmp_path) -> None:
    path = tmp_path / "typo.yaml"
    text = _edit(SPECS / "cnn_sparsity.yaml", "kernel_size: 3, padding: same",
                 "kernel_sise: 3, padding: sme")
    diags = await open_text(client, path, text)
    doc = lsp.TextDocumentIdentifier(path.as_uri())
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=doc, range=diags[0].range, context=lsp.CodeActionContext(diagnostics=diags)))
    assert sorted(a.title for a in actions) == ["Replace 'kernel_sise' with 'kernel_size'",
                                                "Replace 'sme' with 'same'"]
    fixed = _apply(text, [e for a in actions for e in a.edit.changes[path.as_uri()]])
    assert fixed == (SPECS / "cnn_sparsity.yaml").read_text()
    assert await open_text(client, path, fixed) == []


async def test_complete_an_instance_path(client: LanguageClient, tmp_path) -> None:
    """After `conv2.`, the layers block use conv2 expanded to (the last valid version's)."""
    resnet = SPECS / "resnet50.yaml"
    path = resnet                              # its imports are read from its folder
    await open_text(client, path, resnet.read_text())
    items = await complete(client, path, _edit(resnet, "{name: avg_pool, type: GlobalAveragePooling2D}",
                                               f"{{name: avg_pool, type: GlobalAveragePooling2D, "
                                               f"from: conv2.{CURSOR}}}"))
    labels = _labels(items)
    # stage conv2: 3 bottlenecks of 10 layers, the first with 2 more (its projection)
    assert len(labels) == 32 and all(n.startswith("conv2.block") for n in labels)
    assert "conv2.block3.out" in labels


async def test_complete_ports(client: LanguageClient, tmp_path) -> None:
    """An LSTM with return_state has the ports state_h and state_c (Keras: [output, h, c])."""
    path = tmp_path / "ports.yaml"
    seq2seq = SPECS / "seq2seq.yaml"
    await open_text(client, path, seq2seq.read_text())
    inside = await complete(client, path, _edit(seq2seq, "outputs: [lstm.state_h, lstm.state_c]",
                                                f"outputs: [lstm.state_h, {CURSOR}]"))
    assert {"lstm.state_h", "lstm.state_c"} <= set(_labels(inside))
    top = await complete(client, path, _edit(
        seq2seq, "from: [decoder_inputs, encoder.lstm.state_h, encoder.lstm.state_c]",
        f"from: [decoder_inputs, encoder.{CURSOR}]"))
    assert {"encoder.lstm", "encoder.lstm.state_h", "encoder.lstm.state_c"} <= set(_labels(top))


async def test_rename_refuses_a_name_that_is_not_one(client: LanguageClient) -> None:
    path = SPECS / "cnn_sparsity.yaml"
    text = path.read_text()
    await open_text(client, path, text)
    line = _line_of(text, "{name: conv2")
    pos = lsp.Position(line, text.split("\n")[line].index("conv2"))
    with pytest.raises(Exception, match="not a valid name"):
        await client.text_document_rename_async(lsp.RenameParams(
            text_document=lsp.TextDocumentIdentifier(path.as_uri()), position=pos,
            new_name="conv 2"))


async def test_columns_are_the_clients_utf16_units(client: LanguageClient, tmp_path) -> None:
    """After an astral character (two UTF-16 units), a column is one more than in code points."""
    path = tmp_path / "emoji.yaml"
    text = _edit(SPECS / "cnn_sparsity.yaml", "{name: probs, type: Dense, units: 5, activation: softmax}",
                 '{name: probs, type: Dense, units: 5, activation: "😀", use_bias: yess}')
    diags = await open_text(client, path, text)
    line = _line_of(text, "use_bias: yess")
    source = text.split("\n")[line]
    col = source.index("yess")
    [bias] = [d for d in diags if "use_bias" in d.message]
    assert (bias.range.start.line, bias.range.start.character) == (
        line, len(source[:col].encode("utf-16-le")) // 2) == (line, col + 1)
    assert bias.range.end.character == bias.range.start.character + len("yess")


async def test_definition_of_an_imported_block_is_in_its_library(client: LanguageClient) -> None:
    resnet = SPECS / "resnet50.yaml"
    text = resnet.read_text()
    await open_text(client, resnet, text)
    line = _line_of(text, "use: stage")
    pos = lsp.Position(line, text.split("\n")[line].index("use: stage") + 6)
    doc = lsp.TextDocumentIdentifier(resnet.as_uri())
    [target] = await client.text_document_definition_async(lsp.DefinitionParams(doc, pos))
    library = SPECS / "blocks" / "resnet.yaml"
    assert target.uri == library.as_uri()
    lib = library.read_text()
    assert target.range.start == lsp.Position(_line_of(lib, "  stage:"), 2)
    refs = await client.text_document_references_async(lsp.ReferenceParams(
        text_document=doc, position=pos, context=lsp.ReferenceContext(include_declaration=True)))
    assert len(refs) == 1 + 4                     # the definition and conv2 .. conv5
    # a rename from a spec that uses it reaches the library and every spec that reads it
    edit = await client.text_document_rename_async(lsp.RenameParams(
        text_document=doc, position=pos, new_name="stage2"))
    assert sorted(edit.changes) == sorted([library.as_uri(), resnet.as_uri()])
    assert _apply(lib, edit.changes[library.as_uri()]) == lib.replace("  stage:", "  stage2:")
    assert _apply(text, edit.changes[resnet.as_uri()]) == text.replace("use: stage,",
                                                                       "use: stage2,")
    assert text.count("use: stage,") == 4
