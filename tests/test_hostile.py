"""Format 2 under hostile input (issue 24): the bounds that count work, the error count, the
de-duplication of problems across block instances, and the cases the golden files in
tests/golden/invalid/hostile_*.yaml cannot show (valid specs, limits lowered to reach them).

No TensorFlow here. A lowered limit (monkeypatch) is the same rule, quicker to reach.
"""
from __future__ import annotations

import pytest

import specc
from specc import expand, expr
from specc.errors import Diagnostic, Span, SpecError
from specc.expand import to_yaml
from specc.loader import load_text
from specc.provenance import MAX_ERRORS, dedupe
from specc.validation import expand_document
from specc.weights import check_file, resolve

HEAD = "specc: 2\nname: m\ninputs:\n  x: {shape: [4]}\n"
TAIL = "outputs: [out]\nloss: mse\n"


def errors(text: str) -> list[Diagnostic]:
    with pytest.raises(SpecError) as info:
        specc.loads(text, "f.yaml")
    return list(info.value.diagnostics)


def flat_text(text: str) -> str:
    return to_yaml(expand_document(load_text(text, "f.yaml")).data)


# -- the flat form --------------------------------------------------------------------------

def test_the_flat_form_of_a_block_that_exposes_a_port_is_valid() -> None:
    text = HEAD.replace("[4]", "[5, 4]") + (
        "blocks:\n  enc: {layers: [{name: lstm, type: LSTM, units: 3, return_state: true}], "
        "outputs: [lstm.state_h]}\nlayers:\n  - {name: e, use: enc}\n"
        "  - {name: out, type: Dense, units: 1}\n") + TAIL
    spec = specc.loads(text, "f.yaml")
    flat = flat_text(text)
    assert "from: e.lstm.state_h" in flat
    again = specc.loads(flat, "flat.yaml")
    assert again.model_dump(by_alias=True) == spec.model_dump(by_alias=True)


# -- `if:` ----------------------------------------------------------------------------------

@pytest.mark.parametrize("written, kept", [
    ("conv_shortcut", True), ('"${conv_shortcut}"', True), ("not conv_shortcut", False),
    ("true", True), ("false", False)])
def test_if_reads_a_bare_parameter_name_or_expression(written: str, kept: bool) -> None:
    text = HEAD + (
        "blocks:\n  res:\n    params: {conv_shortcut: false}\n    layers:\n"
        f"      - {{name: proj, type: Dense, units: 4, if: {written}}}\n"
        "      - {name: h, type: Dense, units: 4, from: x}\n"
        "      - {name: add, type: Add, from: [h, \"${'proj' if conv_shortcut else 'h'}\"]}\n"
        "layers:\n  - {name: r, use: res, with: {conv_shortcut: true}}\n"
        "  - {name: out, type: Dense, units: 1}\n") + TAIL
    if not kept:      # `add` then reads `proj`, which does not exist: a located error
        assert any("'proj' does not exist here: its `if:` is false here" in d.message
                   for d in errors(text))
        return
    names = [layer.name for layer in specc.loads(text, "f.yaml").layers]
    assert "r.proj" in names


def test_if_in_a_repeat_reads_i() -> None:
    text = HEAD + ("layers:\n  - {name: d, type: Dense, units: 4, repeat: 3, if: i != 1}\n"
                   "  - {name: out, type: Dense, units: 1}\n") + TAIL
    assert [l.name for l in specc.loads(text, "f.yaml").layers] == ["d1", "d3", "out"]


def test_a_repeated_name_may_use_the_blocks_parameters() -> None:
    text = HEAD + ("blocks:\n  b:\n    params: {tag: str}\n    layers:\n"
                   "      - {name: \"${tag}_d\", type: Dense, units: 4, repeat: 2}\n"
                   "layers:\n  - {name: u, use: b, with: {tag: conv}}\n"
                   "  - {name: out, type: Dense, units: 1}\n") + TAIL
    assert [l.name for l in specc.loads(text, "f.yaml").layers] == \
        ["u.conv_d1", "u.conv_d2", "out"]


# -- bounds that count work -----------------------------------------------------------------

def test_entries_that_make_no_layer_count(monkeypatch) -> None:
    monkeypatch.setattr(expand, "MAX_ENTRIES", 500)
    text = HEAD + ("blocks:\n  nothing: {layers: [{name: z, type: Dense, units: 1, if: false}]}\n"
                   "  many: {layers: [{name: n, use: nothing, repeat: 100}]}\n"
                   "layers:\n  - {name: top, use: many, repeat: 100}\n"
                   "  - {name: out, type: Dense, units: 1}\n") + TAIL
    [only] = errors(text)
    assert only.code == "too-large" and "more than 500 entries" in only.message
    assert (only.line, only.column) == (9, 5)          # at the top-level use


def test_expression_steps_are_counted_over_the_whole_expansion(monkeypatch) -> None:
    monkeypatch.setattr(expr, "MAX_STEPS", 2_000)
    # each copy evaluates a small expression: cheap one by one, too much in all
    text = HEAD + ("layers:\n  - {name: d, type: Dense, units: \"${max(1, min(8, 2 + 2 * 1))}\","
                   " repeat: 1000}\n  - {name: out, type: Dense, units: 1}\n") + TAIL
    [only] = errors(text)
    assert only.code == "too-large" and "more than 2,000 evaluation steps" in only.message


@pytest.mark.parametrize("text, reason", [
    ("${round(1, -65)}", "from -64 to 64"),
    ("${round(1.5, 2**62)}", "from -64 to 64"),
    ("${[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}", "deeper than 16 levels"),
    ("${" + "1+" * 66 + "1}", "nests deeper than 64 levels"),
    ("${" + "[" * 120 + "1" + "]" * 120 + "}", "too complex"),
    ("${[p, p]}", "over 10,000 parts"),
    ("${str(p)}", "too long"),
    ("x${p}", "too long"),
])
def test_the_size_of_every_value_is_bounded(text: str, reason: str) -> None:
    big = [list(range(1000)) for _ in range(9)]           # 9,009 parts: allowed as a value
    with pytest.raises(expr.ExprError, match=reason):
        expr.substitute(text, {"p": big})


def test_a_value_at_the_bounds_is_allowed() -> None:
    assert expr.substitute("${round(12345, -2)}", {}) == 12300
    assert len(expr.substitute("${[p, p, p, p, p]}", {"p": list(range(1000))})) == 5


def test_the_error_count_is_bounded() -> None:
    n = MAX_ERRORS + 200
    text = HEAD + "layers:\n" + "".join(
        f"  - {{name: l{k}, type: Dense, units: \"${{nope{k}}}\"}}\n" for k in range(n)) + \
        "  - {name: out, type: Dense, units: 1}\n" + TAIL
    found = errors(text)
    assert len(found) == MAX_ERRORS + 1
    assert found[-1].code == "too-many-errors" and "1,000" in found[-1].message
    # the same bound on the schema's errors (after expansion)
    text = HEAD + "layers:\n" + "".join(
        f"  - {{name: l{k}, type: Dense, units: a, use_bias: 3}}\n" for k in range(n // 2 + 1)) \
        + "  - {name: out, type: Dense, units: 1}\n" + TAIL
    found = errors(text)
    assert len(found) == MAX_ERRORS + 1 and found[-1].code == "too-many-errors"
    assert "202 more" in found[-1].message


# -- de-duplication across instances --------------------------------------------------------

def test_dedupe_groups_by_the_field_not_the_text() -> None:
    at = Span("f.yaml", 3, 5)
    same = ("def", "bad-value", "x")
    a = Diagnostic(at, "message one in 'a1' (block 'b')", "bad-value", group=same)
    b = Diagnostic(at, "a different text in 'a2' (block 'b')", "bad-value", group=same)
    c = Diagnostic(at, "message one in 'a1' (block 'b')", "bad-value", group=("other",))
    out = dedupe([a, b, c])
    assert [d.message for d in out] == ["message one in 'a1' (block 'b') and 1 other instance",
                                        "message one in 'a1' (block 'b')"]
    plain = Diagnostic(at, "twice", "x")
    assert dedupe([plain, plain]) == [plain]


def test_a_problem_is_counted_once_per_instance_in_nested_repeats() -> None:
    text = HEAD + ("blocks:\n  unit: {layers: [{name: h, type: Dense, units: \"${1 / 0}\"}]}\n"
                   "  stage: {layers: [{name: u, use: unit, repeat: 3}]}\n"
                   "layers:\n  - {name: s, use: stage, repeat: 4}\n"
                   "  - {name: out, type: Dense, units: 1}\n") + TAIL
    [only] = errors(text)
    assert only.message.endswith("and 11 other instances")


# -- weights --------------------------------------------------------------------------------

def test_a_home_folder_that_does_not_exist_is_a_message() -> None:
    assert "no home folder for user 'nosuchuser_specc'" in \
        check_file("~nosuchuser_specc/x.weights.h5", None)
    assert str(resolve("~nosuchuser_specc/x.weights.h5", None)).startswith("~nosuchuser_specc")


# -- several files: `imports:` and `extends:` (issue 21) -------------------------------------

LIBRARY = "specc: 2\nblocks:\n  bK:\n    layers: [{name: a, type: Dense, units: 1}]\n"
USER = HEAD + "imports: [PATHS]\nlayers:\n  - {name: out, type: Dense, units: 1}\n" + TAIL


def test_a_diamond_of_imports_reads_each_file_once(tmp_path, monkeypatch) -> None:
    """Library k imports k+1 twice over two routes (a and b): 2**15 paths, 31 files read."""
    from specc import compose

    depth = 15
    for k in range(depth):
        for side in "ab":
            nxt = f"imports: [l{k + 1}a.yaml, l{k + 1}b.yaml]\n" if k + 1 < depth else ""
            (tmp_path / f"l{k}{side}.yaml").write_text(
                LIBRARY.replace("K", f"{k}{side}") + nxt)
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER.replace("PATHS", "l0a.yaml, l0b.yaml"))
    reads: list[str] = []
    real = compose.loader.load_text
    monkeypatch.setattr(compose.loader, "load_text",
                        lambda data, file: reads.append(file) or real(data, file))
    specc.load(spec)
    assert len(reads) == len(set(reads)) == 2 * depth + 1          # and the spec itself


def test_a_fan_of_files_is_bounded_by_one_error(tmp_path) -> None:
    from specc import compose

    n = compose.MAX_FILES + 20
    for k in range(n):
        (tmp_path / f"l{k}.yaml").write_text(LIBRARY.replace("K", str(k)))
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER.replace("PATHS", ", ".join(f"l{k}.yaml" for k in range(n))))
    found = errors_of(spec)
    assert [d.code for d in found] == ["too-large"]
    assert f"more than {compose.MAX_FILES} files" in found[0].message


def test_one_library_named_many_times_is_read_once(tmp_path) -> None:
    (tmp_path / "l.yaml").write_text(LIBRARY.replace("K", "0"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "imports:\n" + "  - l.yaml\n" * 50_000 +
                    "layers:\n  - {name: o, use: b0}\n  - {name: out, type: Dense, units: 1}\n"
                    + TAIL)
    assert [layer.name for layer in specc.load(spec).layers] == ["o.a", "out"]


@pytest.mark.parametrize("path", ["'../../../../../../etc/passwd'", "'/dev/zero'",
                                  "'/proc/self/environ'", "'a\\0b'", "'" + "x/" * 3000 + "'",
                                  "'.'", "'~/.ssh/id_rsa'", "[nested]"])
def test_hostile_paths_read_nothing(tmp_path, path: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER.replace("PATHS", path))
    found = errors_of(spec)
    assert found and all(d.file == str(spec) and d.line == 5 for d in found), found
    assert {d.code for d in found} <= {"include", "bad-type"}


def errors_of(path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as info:
        specc.load(path)
    return list(info.value.diagnostics)


def test_thousands_of_missing_files_stop_at_the_error_bound(tmp_path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER.replace("[PATHS]", "\n" + "".join(f"  - m{k}.yaml\n"
                                                           for k in range(5000))))
    found = errors_of(spec)
    assert len(found) == expand.MAX_ERRORS + 1
    assert found[-1].code == "too-many-errors" and {d.code for d in found[:-1]} == {"include"}
