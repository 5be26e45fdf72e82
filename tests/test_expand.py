"""Format 2 expansion without Keras: expressions, blocks, repeats, `if`, shares, ports,
clauses per instance, the flat form, errors at the use and the definition, and the bounds."""
from __future__ import annotations

from textwrap import dedent

import pytest

import specc
from specc import expr
from specc.expand import MAX_LAYERS, MAX_NESTING, to_yaml
from specc.loader import load_text
from specc.validation import expand_document

HEAD = """\
specc: 2
name: m
inputs:
  x_in: {shape: [8]}
"""
TAIL = """\
outputs: [out]
loss: mse
"""


def flat(text: str) -> dict:
    return expand_document(load_text(text, "f.yaml")).data


def errors(text: str) -> list[str]:
    with pytest.raises(specc.SpecError) as info:
        specc.loads(text, "f.yaml")
    return [d.render() for d in info.value.diagnostics]


# -- expressions ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, names, value", [
    ("${4 * f}", {"f": 16}, 64),
    ("${f // 2}", {"f": 7}, 3),
    ("${2 if i == 0 else 1}", {"i": 0}, 2),
    ("${2 if i == 0 else 1}", {"i": 3}, 1),
    ("${[64, 128, 256][i]}", {"i": 2}, 256),
    ("${'proj' if p else 'x'}", {"p": False}, "x"),
    ("${max(8, int(f * 0.75))}", {"f": 32}, 24),
    ("conv${i + 1}", {"i": 0}, "conv1"),
    ("${f > 2 and not p}", {"f": 3, "p": False}, True),
    ("${1.5 * f}", {"f": 2}, 3.0),
])
def test_expressions_compute_typed_values(text, names, value) -> None:
    got = expr.substitute(text, names)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, reason", [
    ("${().__class__}", "attribute"),
    ("${__import__('os')}", "only these functions"),
    ("${open('x')}", "only these functions"),
    ("${[x for x in [1]]}", "not allowed"),
    ("${lambda: 1}", "not allowed"),
    ("${10 ** 10 ** 10}", "too large"),
    ("${2 ** 200}", "too large"),
    ("${'a' * 100000}", "needs numbers"),
    ("${f / 0}", "division by zero"),
    ("${g}", "unknown name 'g'"),
    ("${1 +}", "invalid expression"),
    ("${" + "1+" * 400 + "1}", "too"),
])
def test_expressions_refuse_what_is_not_a_calculation(text, reason) -> None:
    with pytest.raises(expr.ExprError, match=reason):     # refused before computing
        expr.substitute(text, {"f": 2})


# -- blocks, repeats, if, shares -----------------------------------------------------------

RESIDUAL = HEAD.replace("[8]", "[8, 8, 4]") + """\
blocks:
  res:
    params: {filters: int, stride: 1, project: false, rate: 0.0}
    layers:
      - {name: proj, type: Conv2D, filters: "${filters}", kernel_size: 1, strides: "${stride}", if: "${project}"}
      - {name: c1, type: Conv2D, from: x, filters: "${filters}", kernel_size: 3, padding: same, strides: "${stride}", activation: relu}
      - {name: c2, type: Conv2D, filters: "${filters}", kernel_size: 3, padding: same}
      - {name: add, type: Add, from: ["${'proj' if project else 'x'}", c2]}
    penalties:
      - {name: energy, layer: c1, kind: l2, rate: "${rate}"}
  stage:
    params: {filters: int, blocks: int}
    layers:
      - {name: b, use: res, repeat: "${blocks}", with: {filters: "${filters}", stride: "${2 if i == 0 else 1}", project: "${i == 0}", rate: "${0.1 * (i + 1)}"}}
layers:
  - {name: s1, use: stage, with: {filters: 8, blocks: 2}}
  - {name: pool, type: GlobalAveragePooling2D}
  - {name: out, type: Dense, units: 1}
weight_penalties:
  - {name: decay, layers: "s1.b*.c2", kind: l2, rate: 1.0e-4}
""" + TAIL


def test_nested_blocks_and_repeats_expand_to_named_layers() -> None:
    data = flat(RESIDUAL)
    names = [layer["name"] for layer in data["layers"]]
    assert names == ["s1.b1.proj", "s1.b1.c1", "s1.b1.c2", "s1.b1.add",
                     "s1.b2.c1", "s1.b2.c2", "s1.b2.add", "pool", "out"]
    by = {layer["name"]: layer for layer in data["layers"]}
    assert by["s1.b1.proj"]["from"] == "x_in" and by["s1.b1.proj"]["strides"] == 2
    assert by["s1.b1.add"]["from"] == ["s1.b1.proj", "s1.b1.c2"]      # the projection
    assert by["s1.b2.c1"]["from"] == "s1.b1.add" and by["s1.b2.c1"]["strides"] == 1
    assert by["s1.b2.add"]["from"] == ["s1.b1.add", "s1.b2.c2"]       # the identity shortcut
    assert "from" not in by["pool"]          # the flat layer before it: s1.b2.add
    assert "from" not in by["out"]                                     # as written
    assert [(c["name"], c["layer"], c["rate"]) for c in data["penalties"]] == [
        ("s1.b1.energy", "s1.b1.c1", pytest.approx(0.1)),
        ("s1.b2.energy", "s1.b2.c1", pytest.approx(0.2))]


def test_the_expanded_spec_validates_and_globs_match_paths() -> None:
    spec = specc.loads(RESIDUAL, "f.yaml")
    graph = specc.lower(spec)
    assert [t.name for t in graph.terms] == ["s1.b1.energy", "s1.b2.energy"]
    assert [n for n, _ in graph.weight_terms[0].targets] == ["s1.b1.c2", "s1.b2.c2"]


def test_the_flat_form_is_a_spec_that_expands_to_itself() -> None:
    text = to_yaml(flat(RESIDUAL))
    again = flat(text)
    assert again == flat(RESIDUAL)
    assert to_yaml(again) == text
    assert specc.lower(specc.loads(text)).nodes == specc.lower(specc.loads(RESIDUAL)).nodes


SIAMESE = HEAD + """\
  y_in: {shape: [8]}
blocks:
  tower:
    params: {units: int}
    layers:
      - {name: d1, type: Dense, units: "${units}", activation: relu}
      - {name: d2, type: Dense, units: 4}
    penalties:
      - {name: e, layer: d1, at: pre_activation, kind: l1, rate: 0.01}
layers:
  - {name: left, use: tower, from: x_in, with: {units: 6}}
  - {name: right, share: left, from: y_in}
  - {name: single, type: Dense, units: 4, from: y_in}
  - {name: again, share: single, from: x_in}
  - {name: out, type: Add, from: [left, right, single, again]}
""" + TAIL


def test_a_shared_instance_calls_the_same_layers() -> None:
    data = flat(SIAMESE)
    by = {layer["name"]: layer for layer in data["layers"]}
    assert by["right.d1"] == {"name": "right.d1", "from": "y_in", "share": "left.d1"}
    assert by["right.d2"] == {"name": "right.d2", "from": "right.d1", "share": "left.d2"}
    assert by["again"] == {"name": "again", "from": "x_in", "share": "single"}
    assert [c["name"] for c in data["penalties"]] == ["left.e", "right.e"]   # one per call site
    spec = specc.loads(SIAMESE)
    assert {l.name: l._shares for l in spec.layers if l._shares} == {
        "right.d1": "left.d1", "right.d2": "left.d2", "again": "single"}
    assert spec.layer_map()["right.d1"].weight_kinds() == frozenset()


def test_a_shared_layer_called_on_another_shape_is_refused() -> None:
    text = SIAMESE.replace("y_in: {shape: [8]}", "y_in: {shape: [5]}")
    assert any("calls the shared layer 'left.d1' on shape (5), but its weights are made for (8)"
               in e for e in errors(text))


PORTS = HEAD.replace("x_in: {shape: [8]}", "src: {shape: [5, 3]}\n  dst: {shape: [4, 2]}") + """\
layers:
  - {name: enc, type: LSTM, units: 6, return_state: true, from: src}
  - {name: dec, type: LSTM, units: 6, return_sequences: true, from: dst, call: {initial_state: [enc.state_h, enc.state_c]}}
  - {name: out, type: Dense, units: 2}
penalties:
  - {name: h_energy, layer: enc.state_h, kind: l2, rate: 0.1}
""" + TAIL


def test_ports_and_call_arguments() -> None:
    spec = specc.loads(PORTS)
    graph = specc.lower(spec)
    dec = next(n for n in graph.nodes if n.name == "dec")
    # the clause on enc.state_h sits on an identity layer after it, which the decoder reads
    assert dec.call == {"initial_state": ["enc.state_h_activity", "enc.state_c"]}
    tap = next(n for n in graph.nodes if n.name == "enc.state_h_activity")
    assert tap.reads == ("enc.state_h",)
    bad = PORTS.replace("enc.state_c]", "enc.state_x]")
    assert any("layer 'enc' has no output 'state_x' (its outputs are: state_h, state_c)" in e
               for e in errors(bad))
    assert any("LSTM 'dec' takes 2 initial state tensors, got 1" in e
               for e in errors(PORTS.replace(", enc.state_c]", "]")))
    assert any("takes no call argument 'attention_mask'" in e
               for e in errors(PORTS.replace("initial_state:", "attention_mask:")))
    assert any("'enc.state_c' has shape (6), but the initial states of 'dec' are vectors of "
               "its 4 units" in e for e in errors(PORTS.replace("{name: dec, type: LSTM, "
                                                                "units: 6", "{name: dec, type: "
                                                                "LSTM, units: 4")))


def test_bidirectional_states_are_ports() -> None:
    text = PORTS.replace("{name: enc, type: LSTM, units: 6, return_state: true, from: src}",
                         "{name: enc, type: Bidirectional, layer: {type: LSTM, units: 6, "
                         "return_state: true}, from: src}")
    text = text.replace("[enc.state_h, enc.state_c]", "[enc.forward_h, enc.backward_c]")
    text = text.replace("layer: enc.state_h,", "layer: enc.backward_h,")
    spec = specc.loads(text)
    assert spec.layer_map()["enc"].ports() == ("forward_h", "forward_c", "backward_h",
                                              "backward_c")
    assert [n.name for n in specc.lower(spec).nodes][:2] == ["enc", "enc.backward_h_activity"]


# -- errors at the use and the definition ---------------------------------------------------

def test_an_error_in_a_block_points_at_the_use_with_a_note_at_the_definition() -> None:
    text = RESIDUAL.replace("kernel_size: 3, padding: same}", "kernel_sise: 3, padding: same}")
    lines = [e for e in errors(text) if "[unknown-key]" in e]
    assert len(lines) == 1         # one problem in the definition, reported once
    first, *notes = lines[0].splitlines()
    assert first.startswith("f.yaml:20:5: error: ") and "'kernel_sise'" in first   # the use
    assert "did you mean 'kernel_size'?" in first
    assert first.endswith("in 's1.b1' (block 'res') and 1 other instance  [unknown-key]")
    assert notes[0] == "f.yaml:18:9: note: 's1.b1' is an instance of block 'res', made here"
    assert notes[1].startswith("f.yaml:11:7") and notes[1].endswith(
        "note: in the definition of block 'res'")


@pytest.mark.parametrize("change, message", [
    (("filters: 8, blocks: 2", "filterz: 8, blocks: 2"),
     "block 'stage' has no parameter 'filterz' (did you mean 'filters'?)"),
    (("filters: 8, blocks: 2", "blocks: 2"), "block 'stage' needs parameter 'filters' (int)"),
    (("filters: 8, blocks: 2", "filters: '8', blocks: 2"),
     "parameter 'filters' of block 'stage' is int, got '8'"),
    (("use: stage", "use: stag"), "unknown block 'stag' (did you mean 'stage'?)"),
    (("from: x, filters", "from: y, filters"), "unknown name 'y' in block 'res'"),
    (("filters: 8, blocks: 2", "filters: 8, blocks: 1000000"),
     "repeat: expected an integer from 1"),
    (("repeat: \"${blocks}\"", "repeat: 1000000"), "repeat: expected an integer from 1"),
    (("{name: pool, type", "{name: s1, type"), "duplicate name 's1'"),
    (("\"${'proj' if project else 'x'}\"", "proj"),
     "'proj' does not exist here: its `if:` is false here"),
])
def test_located_expansion_errors(change, message) -> None:
    old, new = change
    assert old in RESIDUAL
    lines = errors(RESIDUAL.replace(old, new))
    assert any(message in line for line in lines), lines


def test_a_block_with_several_inputs_needs_from_on_its_first_entry() -> None:
    text = HEAD + "  y_in: {shape: [8]}\n" + dedent("""\
        blocks:
          pair:
            inputs: [x, y]
            layers:
              - {name: h, type: Dense, units: 3}
              - {name: both, type: Concatenate, from: [h, y]}
        layers:
          - {name: pre, type: Dense, units: 5, from: x_in}
          - {name: p, use: pair, from: [pre, y_in]}
          - {name: out, type: Dense, units: 1}
        """) + TAIL
    assert any("'h' has no `from:` and block 'pair' has several inputs (x, y)" in e
               for e in errors(text))
    fixed = flat(text.replace("{name: h, type", "{name: h, from: x, type"))
    assert fixed["layers"][1] == {"name": "p.h", "from": "pre", "type": "Dense", "units": 3}


def test_a_block_that_uses_itself_is_a_cycle() -> None:
    text = HEAD + dedent("""\
        blocks:
          a: {layers: [{name: u, use: b}]}
          b: {layers: [{name: u, use: a}]}
        layers:
          - {name: out, use: a}
        """) + TAIL
    assert any("block 'a' uses itself (a -> b -> a)" in e for e in errors(text))


def test_expansion_is_bounded() -> None:
    # 10 x 10 x 10 x 10 x 10 uses of a 2-layer block: 200,000 layers would be made; expansion
    # stops at the bound (the time it takes is in tests/benchmarks/bench_format2.py).
    text = HEAD + "blocks:\n  b0: {layers: [{name: d, type: Dense, units: 2}, " \
        "{name: e, type: Dense, units: 2}]}\n" + "".join(
            f"  b{k}: {{layers: [{{name: r, use: b{k - 1}, repeat: 10}}]}}\n"
            for k in range(1, 6)) + "layers:\n  - {name: out, use: b5}\n" + TAIL
    lines = errors(text)
    assert len(lines) == 1 and f"more than {MAX_LAYERS:,} layers" in lines[0]
    deep = HEAD + "blocks:\n  b0: {layers: [{name: d, type: Dense, units: 2}]}\n" + "".join(
        f"  b{k}: {{layers: [{{name: r, use: b{k - 1}}}]}}\n" for k in range(1, 30)) + \
        "layers:\n  - {name: out, use: b29}\n" + TAIL
    assert any(f"deeper than {MAX_NESTING} levels" in e for e in errors(deep))


# -- versions -------------------------------------------------------------------------------

@pytest.mark.parametrize("line, what", [
    ("blocks: {}\n", "`blocks:`"),
    ("x: 1\n", None),
])
def test_format_1_refuses_format_2_constructs(line, what) -> None:
    text = RESIDUAL.replace("specc: 2", "specc: 1")
    lines = errors(text)
    assert all("declare `specc: 2`" in e for e in lines)
    assert any(e.startswith("f.yaml:5:1: error: `blocks:` is a format 2 construct") for e in lines)
    assert any("a `${...}` expression is a format 2 construct" in e for e in lines)
    one = (HEAD + "layers:\n  - {name: a.b, type: Dense, units: 1}\n" + TAIL).replace(
        "specc: 2", "specc: 1")
    assert any("'a.b' is not a valid name" in e for e in errors(one))
    objects = (HEAD + "layers:\n  - {name: out, type: Dense, units: 1, kernel_initializer: "
               "{type: HeNormal}}\n" + TAIL).replace("specc: 2", "specc: 1")
    assert any("an initializer with arguments is a format 2 construct" in e
               for e in errors(objects))


def test_format_2_without_blocks_is_format_1_with_a_new_number() -> None:
    text = HEAD + "layers:\n  - {name: h, type: Dense, units: 3}\n  - {name: out, type: " \
        "Dense, units: 1}\n" + TAIL
    assert flat(text)["layers"] == [{"name": "h", "type": "Dense", "units": 3},
                                    {"name": "out", "type": "Dense", "units": 1}]
    one = specc.lower(specc.loads(text.replace("specc: 2", "specc: 1")))
    two = specc.lower(specc.loads(text))
    assert one.nodes == two.nodes and one.terms == two.terms


# -- the README's format 2 example ----------------------------------------------------------

def test_the_readme_format2_example_expands_as_shown() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Format 2"):]
    spec_text, shown = re.findall(r"```yaml\n(.*?)```", section, re.S)[:2]
    printed = to_yaml(flat(spec_text))
    for line in shown.splitlines():
        assert line in printed.splitlines(), line


def test_a_warning_inside_a_block_is_located_like_an_error() -> None:
    from specc.rules import spec_warnings

    text = HEAD + dedent("""\
        blocks:
          b:
            layers:
              - {name: h, type: Dense, units: 4, activation: relu}
            penalties:
              - {name: s, layer: h, kind: l2, rate: 0.1, reduction: sum}
        layers:
          - {name: u, use: b}
          - {name: out, type: Dense, units: 1}
        """) + TAIL
    [warning] = [d for d in spec_warnings(specc.loads(text, "f.yaml")) if d.code == "sum-reduction"]
    assert (warning.line, warning.column, warning.severity) == (12, 5, "warning")   # the use
    assert warning.message.endswith("in 'u' (block 'b')")
    assert [(n.line, n.message) for n in warning.notes] == [
        (10, "in the definition of block 'b'")]


# -- blocks no entry uses ------------------------------------------------------------------

UNUSED = HEAD + """\
blocks:
  mlp:
    params: {units: int, deep: false}
    layers:
      - {name: d, type: Dense, units: "${unitz}"}
      - {name: e, type: Dnse, units: 3, from: nowhere}
      - {name: f, type: Dense, units: "${units * i}", repeat: 2, from: [d, x]}
      - {name: g, use: mlpp, if: "${deep}"}
    penalties:
      - {name: p, layer: f2, kind: l2, rate: 0.1}
      - {name: q, layer: x, kind: l2, rate: 0.1}
  fine:
    params: {n: 2}
    layers:
      - {name: "${'a' if n else 'b'}", type: Dense, units: "${n}", from: anything}
      - {name: h, use: mlp, with: {units: "${n + 1}"}, repeat: "${n}"}
      - {name: k, type: Dense, units: 1, from: [h2, h.d]}
layers:
  - {name: out, type: Dense, units: 1}
""" + TAIL


def test_a_block_no_entry_uses_is_checked_at_its_definition() -> None:
    # what fails whatever the arguments: an unknown name in ${}, type, block, from: and a
    # penalty's layer: (an input is not one of the block's layers); `i` in a repeat, a
    # repeat's copy (f2, h2), a port of a use (h.d) and names made by ${} are not reported
    assert errors(UNUSED) == [
        "f.yaml:9:39: error: '${unitz}': unknown name 'unitz' (did you mean 'units'?) "
        "(names here: deep, units)  [expression]",
        "f.yaml:10:25: error: unknown layer type 'Dnse' (did you mean 'Dense'?) (see the spec "
        "reference for the list; a custom type comes from a plugin: --plugin MODULE, or an "
        "installed package's `specc.layers` entry point)  [unknown-type]",
        "f.yaml:10:47: error: unknown name 'nowhere' in block 'mlp' (known: x, d, e, f, g) "
        "(inside a block, `from:` reads the block's inputs and its own layers)  [unknown-ref]",
        "f.yaml:12:24: error: unknown block 'mlpp' (did you mean 'mlp'?) (blocks: fine, mlp)  "
        "[unknown-ref]",
        "f.yaml:15:26: error: unknown name 'x' in block 'mlp' (known: d, e, f, g) (inside a "
        "block, a penalty's `layer:` names one of the block's own layers)  [unknown-ref]",
    ]


def test_a_used_block_is_reported_by_its_use_only() -> None:
    used = UNUSED.replace("  - {name: out, type: Dense, units: 1}",
                          "  - {name: b, use: mlp, with: {units: 2}}\n"
                          "  - {name: out, type: Dense, units: 1}")
    found = errors(used)
    assert sum("unitz" in line for line in found) == 1          # once, at the use
    assert "(block 'mlp')" in next(line for line in found if "unitz" in line)


def test_an_imported_librarys_unused_blocks_are_its_own_to_check(tmp_path) -> None:
    (tmp_path / "lib.yaml").write_text(
        "specc: 2\nblocks:\n  good: {layers: [{name: d, type: Dense, units: 2}]}\n"
        "  bad: {layers: [{name: d, type: Dnse, units: 2}]}\n")
    spec = tmp_path / "m.yaml"
    spec.write_text(HEAD + "imports: [lib.yaml]\nlayers:\n  - {name: out, use: good}\n" + TAIL)
    assert specc.load(str(spec)).layers[0].name == "out.d"
    from specc.validation import validate_paths
    [problem] = validate_paths([str(tmp_path / "lib.yaml")])
    assert (problem.span.line, problem.code) == (4, "unknown-type")
