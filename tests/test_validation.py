"""The spec language: golden diagnostics for invalid specs, valid examples, the exported schema.

No TensorFlow here: these tests run on the validation path only.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import specc
from specc.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "golden" / "invalid").glob("*.yaml"))

#: Invalid cases whose mistakes a JSON Schema can express (types, enums, unknown keys).
SCHEMA_CAN_SEE = {
    "bad_names", "bad_version", "missing_keys", "optimizer_args", "top_level_typo",
    "unknown_argument", "unknown_layer_type", "unknown_penalty_kind", "wrong_types",
    "missing_version",
}


def diagnostics_of(path: Path) -> str:
    try:
        specc.loads(path.read_bytes(), file=path.name)
    except SpecError as exc:
        return "\n".join(d.render() for d in exc.diagnostics) + "\n"
    return "(valid)\n"


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.stem)
def test_invalid_spec_diagnostics(case: Path, update_golden: bool) -> None:
    got = diagnostics_of(case)
    expected_file = case.with_suffix(".errors.txt")
    if update_golden:
        expected_file.write_text(got, encoding="utf-8")
    assert got != "(valid)\n", f"{case.name} should be invalid"
    assert expected_file.exists(), f"no {expected_file.name}: run pytest --update-golden"
    assert got == expected_file.read_text(encoding="utf-8")


def test_every_invalid_case_has_expected_text() -> None:
    missing = [c.name for c in INVALID if not c.with_suffix(".errors.txt").exists()]
    assert not missing


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_examples_are_valid(spec: Path) -> None:
    loaded = specc.load(spec)
    assert loaded.name
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/specc.schema.json"


def test_python_tag_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'specc: 1\nname: !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(SpecError) as err:
        specc.loads(text, "tag.yaml")
    assert err.value.code == "yaml-tag"
    assert not marker.exists()


def test_spec_error_api() -> None:
    with pytest.raises(SpecError) as err:
        specc.loads("specc: 1\nname: m\ninputs: {x: {shape: [3]}}\nlayers:\n"
                    "  - {name: h, type: Dense, unit: 4}\noutputs: [h]\nloss: mse\n", "m.yaml")
    e = err.value
    # The first problem (by position): `units` is missing from the layer's mapping.
    assert (e.file, e.line, e.column, e.code) == ("m.yaml", 5, 5, "missing-key")
    assert e.message == "missing required key 'units'"
    assert str(e) == ("m.yaml:5:5: missing required key 'units'\n"
                      "m.yaml:5:28: unknown key 'unit' in a Dense layer (did you mean 'units'?)")
    assert [d.code for d in e.diagnostics] == ["missing-key", "unknown-key"]
    assert isinstance(pickle_roundtrip(e), SpecError)


def pickle_roundtrip(obj):
    import pickle

    return pickle.loads(pickle.dumps(obj))


def test_all_problems_are_reported_at_once() -> None:
    text = (ROOT / "tests/golden/invalid/clause_name_collision.yaml").read_text()
    with pytest.raises(SpecError) as err:
        specc.loads(text, "c.yaml")
    assert [d.code for d in err.value.diagnostics] == ["name-collision"] * 4


# -- the exported JSON Schema -------------------------------------------------------------

@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "schemas" / "specc.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_file_is_current() -> None:
    """Generated in a fresh interpreter: in this one, a test before may have registered a
    plugin's layer type, loss or metric, which the schema would then list."""
    on_disk = json.loads((ROOT / "schemas" / "specc.schema.json").read_text())
    code = "import json\nfrom specc.spec.model import json_schema\nprint(json.dumps(json_schema()))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert on_disk == json.loads(run.stdout), "run `specc schema --no-config -o " \
        "schemas/specc.schema.json`"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_examples_pass_the_schema(spec: Path, validator) -> None:
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(spec.read_text()))]
    assert errors == []


@pytest.mark.parametrize("case", sorted(SCHEMA_CAN_SEE))
def test_schema_rejects_what_it_can_express(case: str, validator) -> None:
    data = yaml.safe_load((ROOT / "tests/golden/invalid" / f"{case}.yaml").read_text())
    assert not validator.is_valid(data)


# -- the CLI stays light -------------------------------------------------------------------

def test_import_specc_is_light_and_registers_later() -> None:
    code = ("import sys, specc; assert 'keras' not in sys.modules; "
            "import keras; print(keras.saving.get_registered_object('specc>SpecModel') "
            "is not None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={"TF_CPP_MIN_LOG_LEVEL": "3",
                                                     "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "True"


def test_parallel_validation_survives_a_dying_worker(tmp_path: Path, monkeypatch) -> None:
    import os

    from specc import validation

    text = (ROOT / "specs" / "question_mlp.yaml").read_text()
    files = []
    for i in range(validation.PARALLEL_FROM + 10):
        path = tmp_path / f"s{i:03d}.yaml"
        path.write_text(text + ("bogus: 1\n" if i % 50 == 7 else ""))
        files.append(str(path))
    serial = validation.validate_paths(files, jobs=1)
    parent = os.getpid()
    real = validation._check_one

    def dies_in_children(path: str, *settings):
        if os.getpid() != parent:
            raise RuntimeError("worker crash")
        return real(path, *settings)

    monkeypatch.setattr(validation, "_check_one", dies_in_children)
    assert validation.validate_paths(files, jobs=2) == serial
    assert [d.file.rsplit("/", 1)[1] for d in serial if d.severity == "error"] == [
        f"s{i:03d}.yaml" for i in (7, 57, 107, 157, 207)]   # the others: a warning each


def test_explain_names_a_spec_without_penalties_plainly() -> None:
    from specc.explain import composition

    text = """specc: 1
name: plain
inputs: {x: {shape: [3]}}
layers:
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
"""
    assert composition(specc.lower(specc.loads(text, "plain.yaml")))[0] == (
        "loss = task_loss (no penalties)")
