"""Block libraries (`imports:`) and base specs (`extends:`), issue 21: the merged spec equals
the one written in one file, overrides go by name, every problem points into the file where it
is with a note at the import or extends, and paths stay inside the project. No Keras."""
from __future__ import annotations

import io
import os
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

import specc
from specc import compose, includes
from specc.cli import main
from specc.errors import Diagnostic, SpecError
from specc.expand import to_yaml
from specc.loader import load_file, load_text
from specc.validation import _check_one, expand_document

from helpers import SPECS

LIB = """\
specc: 2
description: shared MLP blocks
blocks:
  mlp:
    params: {units: int, rate: 0.1}
    layers:
      - {name: fc, type: Dense, units: "${units}", activation: relu}
      - {name: drop, type: Dropout, rate: "${rate}"}
"""
BASE = """\
specc: 2
name: base
imports: [blocks/mlp.yaml]
inputs:
  x: {shape: [8]}
layers:
  - {name: h1, use: mlp, with: {units: 16}}
  - {name: h2, use: mlp, with: {units: 16, rate: 0.2}}
  - {name: out, type: Dense, units: 3, activation: softmax}
outputs: [out]
loss: categorical_crossentropy
optimizer: adam
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder / next(iter(files))


def flat(path: Path) -> dict:
    return expand_document(load_file(path)).data


def problems(path: Path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as info:
        specc.load(path)
    return list(info.value.diagnostics)


def at(d: Diagnostic) -> str:
    return f"{os.path.basename(d.file)}:{d.line}:{d.column}"


def one_file(tmp_path: Path, text: str) -> dict:
    return flat(write(tmp_path / "one", {"spec.yaml": text}))


# -- imports ---------------------------------------------------------------------------------

def test_imported_blocks_expand_as_if_written_in_the_spec(tmp_path: Path) -> None:
    spec = write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    inline = BASE.replace("imports: [blocks/mlp.yaml]\n", "").replace(
        "layers:\n  - {name: h1", LIB.split("\n", 2)[2].replace("description: shared MLP "
                                                               "blocks\n", "")
        + "layers:\n  - {name: h1", 1)
    assert "blocks:" in inline and "imports" not in inline
    assert flat(spec) == one_file(tmp_path, inline)
    assert specc.load(spec).model_dump() == specc.loads(inline, "i.yaml").model_dump()


def test_a_library_imported_along_two_routes_is_one_definition(tmp_path: Path) -> None:
    spec = write(tmp_path, {
        "spec.yaml": BASE.replace("[blocks/mlp.yaml]", "[blocks/mlp.yaml, blocks/more.yaml]"),
        "blocks/mlp.yaml": LIB,
        "blocks/more.yaml": "specc: 2\nimports: [mlp.yaml]\nblocks:\n  two:\n    layers:\n"
                            "      - {name: a, use: mlp, with: {units: 4}}\n"})
    assert [e["name"] for e in flat(spec)["layers"]][:2] == ["h1.fc", "h1.drop"]


def test_a_library_checks_on_its_own(tmp_path: Path) -> None:
    lib = write(tmp_path, {"blocks/mlp.yaml": LIB})
    assert _check_one(str(lib)) == []
    bad = write(tmp_path, {"bad.yaml": "specc: 2\nblocks:\n  b: {layers: []}\nlayrs: 1\n"})
    found = _check_one(str(bad))
    assert [(at(d), d.code) for d in found] == [("bad.yaml:3:6", "missing-key"),
                                               ("bad.yaml:4:1", "unknown-key")]
    assert main(["validate", "--no-config", str(lib)]) == 0


# -- extends: overrides by name ----------------------------------------------------------------

def names(data: dict) -> list[str]:
    return [e["name"] for e in data["layers"]]


def test_an_override_changes_the_keys_it_gives_and_merges_with(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": "specc: 2\nextends: base.yaml\nname: child\n"
                                           "layers:\n  - {name: h2, with: {units: 32}}\n"
                                           "  - {name: out, units: 5}\n"})
    data = flat(child)
    assert data["name"] == "child"
    by_name = {e["name"]: e for e in data["layers"]}
    assert by_name["h2.fc"]["units"] == 32 and by_name["h2.drop"]["rate"] == 0.2   # kept
    assert by_name["out"] == {"name": "out", "type": "Dense", "units": 5,
                              "activation": "softmax"}
    assert names(data) == names(flat(tmp_path / "base.yaml"))


def test_delete_after_before_and_new_entries(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": """\
specc: 2
extends: base.yaml
layers:
  - {name: h1, delete: true}
  - {name: h0, type: Dense, units: 4, before: h2}
  - {name: h3, use: mlp, with: {units: 8}, after: h2}
  - {name: norm, type: LayerNormalization}
"""})
    assert names(flat(child)) == ["h0", "h2.fc", "h2.drop", "h3.fc", "h3.drop", "out", "norm"]
    assert "from" not in flat(child)["layers"][0]          # the first layer reads x


def test_replace_writes_an_entry_whole_and_a_type_change_needs_it(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": "specc: 2\nextends: base.yaml\nlayers:\n"
                                           "  - {name: h1, type: Dense, units: 2, "
                                           "replace: true}\n"})
    assert flat(child)["layers"][0] == {"name": "h1", "type": "Dense", "units": 2}
    child.write_text("specc: 2\nextends: base.yaml\nlayers:\n  - {name: h1, type: Dense, "
                     "units: 2}\n")
    [d] = problems(child)
    assert (at(d), d.code) == ("child.yaml:4:22", "bad-value")
    assert "'h1' has `use: mlp` in the base" in d.message and "replace: true" in d.message
    assert [at(n) for n in d.notes] == ["base.yaml:7:5", "child.yaml:2:10"]


def test_top_level_keys_and_named_mappings(tmp_path: Path) -> None:
    base = BASE.replace("x: {shape: [8]}", "x: {shape: [8]}\n  y: {shape: [2]}").replace(
        "  - {name: out,", "  - {name: cat, type: Concatenate, from: [h2, y]}\n  - {name: out,")
    write(tmp_path, {"base.yaml": base, "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": "specc: 2\nextends: base.yaml\n"
                                           "inputs: {y: {shape: [3]}}\noptimizer: {type: sgd}\n"
                                           "layers:\n  - {name: h1, delete: true}\n"})
    data = flat(child)
    assert data["inputs"] == {"x": {"shape": [8]}, "y": {"shape": [3]}}
    assert data["optimizer"] == {"type": "sgd"}
    child.write_text("specc: 2\nextends: base.yaml\ninputs: {y: null}\noptimizer: null\n"
                     "layers:\n  - {name: cat, delete: true}\n")
    data = flat(child)
    assert list(data["inputs"]) == ["x"] and "optimizer" not in data
    specc.load(child)


def test_a_block_is_overridden_by_name_its_layers_too(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": """\
specc: 2
extends: base.yaml
blocks:
  mlp:
    params: {rate: 0.5}
    layers:
      - {name: fc, activation: tanh}
      - {name: norm, type: BatchNormalization, after: fc}
"""})
    layers = flat(child)["layers"]
    assert names(flat(child))[:3] == ["h1.fc", "h1.norm", "h1.drop"]
    assert layers[0]["activation"] == "tanh" and layers[2]["rate"] == 0.5
    assert layers[5]["rate"] == 0.2            # h2's own `with: {rate: 0.2}` still wins


def test_a_chain_of_bases_and_expand_shows_the_merged_spec(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB,
                     "pyproject.toml": "[tool.specc]\n",
                     "mid.yaml": "specc: 2\nextends: base.yaml\nlayers:\n"
                                 "  - {name: h1, with: {units: 12}}\n"})
    top = write(tmp_path, {"sub/top.yaml": "specc: 2\nextends: ../mid.yaml\nname: top\n"})
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["expand", "--no-config", str(top)]) == 0
    shown = yaml.safe_load(out.getvalue())
    assert shown["name"] == "top" and shown["layers"][0]["units"] == 12
    assert "imports" not in shown and "extends" not in shown and "blocks" not in shown
    assert specc.loads(out.getvalue(), "flat.yaml").model_dump() == specc.load(top).model_dump()


# -- located errors ----------------------------------------------------------------------------

def test_a_problem_in_a_library_points_into_it_with_a_note_at_the_import(tmp_path: Path) -> None:
    lib = LIB.replace("activation: relu", "activaton: relu")
    spec = write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": lib})
    found = problems(spec)
    assert [(at(d), d.code) for d in found] == [("mlp.yaml:7:63", "unknown-key")]
    assert "and 1 other instance" in found[0].message           # h1 and h2
    assert [at(n) for n in found[0].notes] == ["base.yaml:7:5", "base.yaml:3:11"]
    assert found[0].notes[-1].message == "imported here"
    (tmp_path / "blocks/mlp.yaml").write_text(LIB.replace("params: {", "params: [", 1))
    [d] = problems(spec)
    assert (at(d), d.code) == ("mlp.yaml:5:35", "yaml-syntax")
    assert [(at(n), n.message) for n in d.notes] == [("base.yaml:3:11", "imported here")]


def test_a_problem_in_a_base_points_into_the_base(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE.replace("units: 3,", "units: three,"),
                     "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": "specc: 2\nextends: base.yaml\nlayers:\n"
                                           "  - {name: out, activation: 5}\n"})
    found = problems(child)
    assert sorted((at(d), d.code) for d in found) == [("base.yaml:9:37", "bad-type"),
                                                      ("child.yaml:4:29", "bad-value")]
    in_base = next(d for d in found if d.file.endswith("base.yaml"))
    assert [(at(n), n.message) for n in in_base.notes] == [("child.yaml:2:10", "extended here")]


@pytest.mark.parametrize("written, message, code", [
    ("missing.yaml", "cannot read 'missing.yaml': no such file", "include"),
    ("blocks/mlp.yml", "(did you mean 'blocks/mlp.yaml'?)", "include"),
    ("../outside.yaml", "is outside the project folder", "include"),
    ("/etc/passwd", "is outside the project folder", "include"),
    ("blocks/../../outside.yaml", "is outside the project folder", "include"),
    ("link.yaml", "is a link to a file outside the project folder", "include"),
    ("blocks", "is not a regular file", "include"),
    ("base.yaml", "is not a block library", "bad-value"),
    ("spec.yaml", "is already being read: a cycle", "cycle"),
    (7, "names a file by its path", "bad-type"),
    ("", "names a file by its path", "bad-type"),
])
def test_hostile_import_paths_are_located_errors(tmp_path: Path, written, message: str,
                                                 code: str) -> None:
    project = tmp_path / "project"
    write(project, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    (tmp_path / "outside.yaml").write_text(LIB)
    (project / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    spec = write(project, {"spec.yaml": BASE.replace("[blocks/mlp.yaml]",
                                                     f"[blocks/mlp.yaml, {written!r}]")})
    found = [d for d in problems(spec) if d.code == code]
    assert found and message in found[0].message, [d.render() for d in problems(spec)]
    assert at(found[0]) == "spec.yaml:3:28"


def test_a_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    os.mkfifo(tmp_path / "pipe.yaml")            # opening it would block: never opened
    child = write(tmp_path, {"child.yaml": "specc: 2\nextends: pipe.yaml\n"})
    [d] = problems(child)
    assert (at(d), d.code) == ("child.yaml:2:10", "include") and "not a regular" in d.message


def test_the_project_folder_is_where_pyproject_says(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[tool.specc]\n", "blocks/mlp.yaml": LIB})
    spec = write(tmp_path, {"specs/spec.yaml": BASE.replace("[blocks/mlp.yaml]",
                                                            "[../blocks/mlp.yaml]")})
    assert names(flat(spec))[0] == "h1.fc"
    (tmp_path / "pyproject.toml").write_text("[tool.other]\nspecc = 1\n")
    [d] = problems(spec)                     # no [tool.specc]: the spec's folder is the root
    assert d.code == "include" and "outside the project folder" in d.message


def test_cycles_through_several_files_and_depth(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": "specc: 2\nextends: b.yaml\n",
                     "b.yaml": "specc: 2\nextends: a.yaml\n"})
    [d] = problems(tmp_path / "a.yaml")
    assert (at(d), d.code) == ("b.yaml:2:10", "cycle")
    assert "a.yaml -> " in d.message and [at(n) for n in d.notes] == ["a.yaml:2:10"]
    n = compose.MAX_INCLUDE_DEPTH + 3
    write(tmp_path, {f"d{k}.yaml": f"specc: 2\nextends: d{k + 1}.yaml\n" for k in range(n)})
    write(tmp_path, {f"d{n}.yaml": BASE.replace("imports: [blocks/mlp.yaml]\n", "")})
    found = problems(tmp_path / "d0.yaml")
    assert [d.code for d in found] == ["too-deep"]
    assert len(found[0].notes) == compose.MAX_INCLUDE_DEPTH         # the whole chain, located


def test_many_imports_of_one_file_cost_one_read_and_many_files_are_bounded(
        tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, {"blocks/mlp.yaml": LIB})
    many = BASE.replace("[blocks/mlp.yaml]", "\n" + "".join(["  - blocks/mlp.yaml\n"] * 5000))
    assert names(flat(write(tmp_path, {"spec.yaml": many})))[0] == "h1.fc"
    monkeypatch.setattr(includes, "MAX_FILES", 4)        # where the bound is read
    libs = {f"l{k}.yaml": f"specc: 2\nblocks:\n  b{k}: {{layers: [{{name: a, type: Dense, "
                          "units: 1}]}\n" for k in range(6)}
    write(tmp_path, libs)
    fan = write(tmp_path, {"fan.yaml": BASE.replace("[blocks/mlp.yaml]", "[blocks/mlp.yaml, "
                                                    + ", ".join(libs) + "]")})
    found = problems(fan)
    assert [d.code for d in found] == ["too-large"] and "more than 4 files" in found[0].message


def test_the_bytes_of_all_files_together_are_bounded(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    monkeypatch.setattr(compose.loader, "MAX_BYTES", len(BASE) + 20)
    [d] = problems(tmp_path / "base.yaml")
    assert d.code == "too-large" and "bytes together" in d.message
    assert at(d) == "base.yaml:3:11"


@pytest.mark.parametrize("entry, message, code", [
    ("{name: zz, delete: true}", "nothing to delete: the base has no entry named 'zz'",
     "unknown-ref"),
    ("{name: h1, delete: true, units: 3}", "holds only its `name:`", "bad-value"),
    ("{name: h1, delete: yes}", "`delete:` is true or false", "bad-type"),
    ("{name: n, type: Dense, units: 1, after: h22}", "no entry is named 'h22' (did you mean 'h2'",
     "unknown-ref"),
    ("{name: n, type: Dense, units: 1, after: [h1]}", "no entry is named ['h1']",
     "unknown-ref"),
    ("{name: n, type: Dense, units: 1, after: h1, before: h2}", "not both", "bad-value"),
    ("{type: Dense, units: 1, after: h1}", "`after:` needs the `name:`", "missing-key"),
])
def test_bad_overrides_are_located_in_the_child(tmp_path: Path, entry: str, message: str,
                                                code: str) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": f"specc: 2\nextends: base.yaml\nlayers:\n"
                                           f"  - {entry}\n"})
    found = problems(child)
    assert found[0].code == code and message in found[0].message, found[0].render()
    assert found[0].file == str(child) and found[0].line == 4


def test_duplicate_blocks_and_what_extends_and_imports_take(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB,
                     "blocks/other.yaml": LIB.replace("activation: relu", "activation: tanh")})
    two = write(tmp_path, {"two.yaml": BASE.replace("[blocks/mlp.yaml]",
                                                    "[blocks/mlp.yaml, blocks/other.yaml]")})
    [d] = problems(two)
    assert (at(d), d.code) == ("two.yaml:3:28", "duplicate-name")
    assert [at(n) for n in d.notes][:2] == ["mlp.yaml:4:3", "other.yaml:4:3"]
    own = write(tmp_path, {"own.yaml": BASE.replace("inputs:", "blocks:\n  mlp: {layers: "
                                                    "[{name: a, type: Dense, units: 1}]}\n"
                                                    "inputs:")})
    [d] = problems(own)
    assert (at(d), d.code) == ("own.yaml:5:3", "duplicate-name")
    for text, what in (("specc: 2\nextends: blocks/mlp.yaml\n", "is a block library"),
                       ("specc: 2\nextends: one.yaml\n", "not a format 2 spec")):
        write(tmp_path, {"one.yaml": BASE.replace("specc: 2", "specc: 1")})
        [d] = problems(write(tmp_path, {"c.yaml": text}))
        assert what in d.message and at(d) == "c.yaml:2:10"


def test_format_1_has_neither(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        specc.loads("specc: 1\nimports: [a.yaml]\nextends: b.yaml\n", "f.yaml")
    assert [(d.line, d.code) for d in info.value.diagnostics if d.code == "format"] == [
        (2, "format"), (3, "format")]


def test_text_resolves_against_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, {"blocks/mlp.yaml": LIB})
    monkeypatch.chdir(tmp_path)
    assert names(specc.loads(BASE, "<string>").document.data)[0] == "h1.fc"


# -- the example ---------------------------------------------------------------------------------

def test_the_resnet_library_gives_resnet50_its_blocks() -> None:
    """specs/resnet50.yaml imports specs/blocks/resnet.yaml; specs/variants/resnet101.yaml
    extends it. The flat ResNet50 is the one written with the blocks in the spec itself."""
    lib = yaml.safe_load((SPECS / "blocks" / "resnet.yaml").read_text())
    text = (SPECS / "resnet50.yaml").read_text()
    assert "imports: [blocks/resnet.yaml]" in text
    inline = yaml.safe_load(text)
    del inline["imports"]
    inline["blocks"] = lib["blocks"]
    assert flat(SPECS / "resnet50.yaml") == expand_document(
        load_text(yaml.safe_dump(inline, sort_keys=False), "inline.yaml")).data
    deep = flat(SPECS / "variants" / "resnet101.yaml")
    counts = {s: len({e["name"].split(".")[1] for e in deep["layers"]
                      if e["name"].startswith(s + ".")}) for s in ("conv2", "conv3", "conv4",
                                                                   "conv5")}
    assert counts == {"conv2": 3, "conv3": 4, "conv4": 23, "conv5": 3}
    assert deep["name"] == "resnet101"
    assert to_yaml(deep).count("\n") > to_yaml(flat(SPECS / "resnet50.yaml")).count("\n")


def test_the_readme_error_example_is_real(tmp_path: Path, monkeypatch) -> None:
    readme = (SPECS.parent / "README.md").read_text()
    shown = readme.split("(`blocks/mlp.yaml` has a misspelt key; `spec.yaml` imports it):\n\n"
                         "```text\n", 1)[1].split("```", 1)[0]
    write(tmp_path, {"spec.yaml": BASE, "blocks/mlp.yaml": LIB.replace("activation: relu",
                                                                       "activaton: relu")})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        specc.load("spec.yaml")
    assert "\n".join(d.render() for d in info.value.diagnostics) + "\n" == shown


def test_overrides_apply_to_the_merged_spec_and_a_library_is_not_a_spec(tmp_path: Path) -> None:
    from specc.overrides import parse_all

    write(tmp_path, {"base.yaml": BASE, "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": "specc: 2\nextends: base.yaml\nlayers:\n"
                                           "  - {name: h2, with: {units: 32}}\n"})
    spec = specc.load(child, overrides=parse_all(["h2.with.units=7", "h1.fc.units=5"]))
    units = {layer.name: getattr(layer, "units", None) for layer in spec.layers}
    assert units["h2.fc"] == 7 and units["h1.fc"] == 5
    [d] = problems(tmp_path / "blocks" / "mlp.yaml")
    assert (d.code, d.line) == ("top-level", 1) and "block library" in d.message


def test_a_warning_in_a_base_has_a_note_at_the_extends(tmp_path: Path) -> None:
    write(tmp_path, {"base.yaml": BASE + "penalties:\n  - {name: e, layer: out, kind: l2, "
                                         "rate: 1.0e-4, reduction: sum}\n",
                     "blocks/mlp.yaml": LIB})
    child = write(tmp_path, {"child.yaml": "specc: 2\nextends: base.yaml\n"})
    found = _check_one(str(child))
    assert found and all(d.severity == "warning" for d in found)
    assert at(found[0]).startswith("base.yaml:14:")
    assert [(at(n), n.message) for n in found[0].notes][-1:] == [("child.yaml:2:10",
                                                                  "extended here")]


def test_the_readme_counts_the_example_lines() -> None:
    readme = " ".join((SPECS.parent / "README.md").read_text().split())
    for path in ("resnet50.yaml", "blocks/resnet.yaml"):
        lines = len((SPECS / path).read_text().splitlines())
        assert f"{lines}-line library `specs/{path}`" in readme or \
            f"`specs/{path}` is ResNet50 in {lines} lines" in readme


def test_a_directive_in_a_spec_that_extends_nothing_says_where_it_works() -> None:
    text = BASE.replace("imports: [blocks/mlp.yaml]\n", "").replace(
        "use: mlp, with: {units: 16}}", "type: Dense, units: 4, delete: true}", 1)
    with pytest.raises(SpecError) as info:
        specc.loads(text, "f.yaml")
    d = info.value.diagnostics[0]                 # (h2 uses a block no longer imported)
    assert d.code == "unknown-key" and "it is read in a spec that says `extends:`" in d.message


def test_a_weights_file_named_by_a_base_is_the_base_folder_s(tmp_path: Path) -> None:
    from specc.weights import HDF5_SIGNATURE

    write(tmp_path, {"base/base.yaml": BASE.replace("[blocks/mlp.yaml]", "[../blocks/mlp.yaml]")
                     + "weights: base.weights.h5\n", "blocks/mlp.yaml": LIB,
                     "pyproject.toml": "[tool.specc]\n"})
    (tmp_path / "base" / "base.weights.h5").write_bytes(HDF5_SIGNATURE + b"\0" * 8)
    child = write(tmp_path, {"variants/child.yaml": "specc: 2\nextends: ../base/base.yaml\n"})
    spec = specc.load(child)
    assert spec.weights == os.path.join("..", "base", "base.weights.h5")
    child.write_text("specc: 2\nextends: ../base/base.yaml\nweights: mine.weights.h5\n")
    [d] = problems(child)                    # the spec's own path: relative to itself
    assert at(d) == "child.yaml:3:10" and "variants/mine.weights.h5" in d.message
