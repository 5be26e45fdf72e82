"""`--set PATH=VALUE`: overrides by name (specc.overrides), validated like a file.

Everything but the last test runs without TensorFlow.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import specc
from specc.cli import main
from specc.overrides import parse, parse_all, sweep
from specc.validation import load, loads

ROOT = Path(__file__).resolve().parents[1]
MNIST = str(ROOT / "specs" / "mnist_cnn.yaml")

FORMAT2 = """\
specc: 2
name: m
inputs:
  x_in: {shape: [8, 8, 4]}
blocks:
  res:
    params: {filters: int, rate: 0.0}
    layers:
      - {name: c1, type: Conv2D, filters: "${filters}", kernel_size: 3, padding: same}
      - {name: c2, type: Conv2D, filters: 4, kernel_size: 3, padding: same}
      - {name: add, type: Add, from: [x, c2]}
    penalties:
      - {name: energy, layer: c1, kind: l2, rate: "${rate}"}
layers:
  - {name: s1, use: res, repeat: 2, with: {filters: 8, rate: 0.5}}
  - {name: pool, type: GlobalAveragePooling2D}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
"""


def errors(*sets: str, path: str = MNIST) -> list[str]:
    with pytest.raises(specc.SpecError) as info:
        load(path, parse_all(sets))
    return [d.render() for d in info.value.diagnostics]


def test_overrides_by_name_reach_layers_clauses_and_top_level_keys() -> None:
    spec = load(MNIST, parse_all(["dense4.units=128", "dense4_energy.rate=1e-2",
                                  "optimizer.learning_rate=3e-4", "seed=3", "loss=mse",
                                  "decay.rate=0", "image.shape=[32, 32, 1]"]))
    assert spec.layer_map()["dense4"].units == 128
    assert spec.penalties[0].rate == 0.01 and spec.weight_penalties[0].rate == 0.0
    assert spec.optimizer.type == "adam" and spec.optimizer.learning_rate == 3e-4
    assert spec.seed == 3 and spec.loss == "mse"
    assert spec.inputs["image"].shape == [32, 32, 1]
    untouched = load(MNIST, ())
    assert untouched.layer_map()["dense4"].units == 64        # the file is never changed
    assert load(MNIST, parse_all(["seed=3", "seed=4"])).seed == 4   # a later one wins


def test_a_bad_value_is_located_in_the_argument_with_a_note_at_the_replaced_value() -> None:
    [line] = errors("dense4.units=abc")
    assert line.startswith("--set dense4.units=abc:1:14: error: layers[3] (dense4).units: "
                           "expected an integer, got a string 'abc'  [bad-type]")
    assert "mnist_cnn.yaml:17:40: note: the spec's value, replaced by --set dense4.units" in line
    [line] = errors("dense4_energy.rate=-1")
    assert line.startswith("--set dense4_energy.rate=-1:1:20: error: penalties[0] "
                           "(dense4_energy).rate: must be greater than or equal to 0")
    # inside a flow value: the column of the bad item
    [line] = errors("conv1.kernel_size=[3, x]")
    assert line.startswith("--set conv1.kernel_size=[3, x]:1:")


def test_unknown_names_and_keys_get_did_you_mean() -> None:
    assert errors("dense5.units=3")[0].splitlines() == [
        "--set dense5.units=3:1:1: error: --set dense5.units: nothing is named 'dense5' (did "
        "you mean 'dense4'?) (PATH starts with a top-level key or a layer, clause or input "
        "name)  [unknown-override]",
        f"{MNIST}:3:1: note: while applying --set to this spec"]
    assert "did you mean 'seed'?" in errors("seeed=3")[0]
    [line] = errors("dense4.unitz=3")
    assert line.startswith("--set dense4.unitz=3:1:8: error: unknown key 'unitz' in a Dense "
                           "layer (did you mean 'units'?)")
    assert line.endswith(f"{MNIST}:17:5: note: --set dense4.unitz adds it here")


def test_a_schedule_or_a_part_of_one_can_be_set() -> None:
    text = Path(MNIST).read_text()
    spec = loads(text, "m.yaml", parse_all([
        "dense4_energy.rate={schedule: linear, from: 0, to: 1e-3, steps: 10}"]))
    assert spec.penalties[0].params["rate"]["steps"] == 10
    spec = loads(text.replace("rate: 1.0e-3\n", "rate: {schedule: cosine, from: 1, to: 0, "
                              "steps: 5}\n"), "m.yaml", parse_all(["dense4_energy.rate.to=0.5"]))
    assert spec.penalties[0].params["rate"]["to"] == 0.5
    with pytest.raises(specc.SpecError) as info:
        load(MNIST, parse_all(["dense4_energy.rate.to=1"]))
    assert "dense4_energy.rate is not a mapping here; set it whole" in str(info.value)


@pytest.mark.parametrize("arg, start, message", [
    ("dense4.units", "--set dense4.units:1:1:", "expected PATH=VALUE"),
    ("layers.0.units=3", "--set layers.0.units=3:1:8:", "never by list index"),
    ("dense4..units=3", "--set dense4..units=3:1:8:", "an empty name"),
    ("dense4.units=[1,", "--set dense4.units=[1,:1:", "the value is not valid YAML"),
    ("dense4.units=1,2", "--set dense4.units=1,2:1:14:", "only `specc fit` runs"),
])
def test_malformed_arguments(arg: str, start: str, message: str) -> None:
    [line] = errors(arg)
    assert line.startswith(start) and message in line, line


def test_values_are_yaml_1_2_and_commas_make_sweeps() -> None:
    assert parse("a.b=on").value == "on" and parse("a.b=1e-2").value == 0.01
    assert parse("a.b=[3, 3]").value == [3, 3] and parse("a.b={type: sgd}").value == {
        "type": "sgd"}
    assert parse("a.b='x,y'").value == "x,y" and parse("a.b=").value is None
    over = parse("dense4_energy.rate=1e-4,1e-3, 1e-2")
    assert [c.value for c in over.choices] == [1e-4, 1e-3, 1e-2]
    runs = sweep(parse_all(["dense4_energy.rate=0,1e-3", "seed=1,2", "loss=mse"], sweep=True))
    assert [name for name, _ in runs] == [
        "dense4_energy.rate=0,seed=1", "dense4_energy.rate=0,seed=2",
        "dense4_energy.rate=1e-3,seed=1", "dense4_energy.rate=1e-3,seed=2"]
    assert all(len(o.choices) == 1 for _, run in runs for o in run)


def test_format2_top_level_names_apply_before_expansion_and_instances_after() -> None:
    spec = loads(FORMAT2, "f.yaml", parse_all(["s1.with.filters=6"]))     # a block use
    assert [layer.filters for layer in spec.layers if layer.name.endswith(".c1")] == [6, 6]
    spec = loads(FORMAT2, "f.yaml", parse_all(["s12.c1.filters=5", "s11.energy.rate=0.25"]))
    by = spec.layer_map()
    assert by["s11.c1"].filters == 8 and by["s12.c1"].filters == 5
    assert [(p.name, p.rate) for p in spec.penalties] == [("s11.energy", 0.25),
                                                          ("s12.energy", 0.5)]
    with pytest.raises(specc.SpecError) as info:
        loads(FORMAT2, "f.yaml", parse_all(["s13.c1.filters=5"]))
    assert "nothing is named 's13.c1' (did you mean 's12.c1'?)" in str(info.value)
    with pytest.raises(specc.SpecError) as info:
        loads(FORMAT2, "f.yaml", parse_all(["s12.c1.filters=x"]))
    assert str(info.value).startswith("--set s12.c1.filters=x:1:")


def test_a_parameter_set_on_a_use_without_with_makes_the_mapping() -> None:
    text = FORMAT2.replace("repeat: 2, with: {filters: 8, rate: 0.5}", "repeat: 2").replace(
        "params: {filters: int, rate: 0.0}", "params: {filters: 8, rate: 0.0}")
    assert [p.rate for p in loads(text, "f.yaml").penalties] == [0.0, 0.0]
    spec = loads(text, "f.yaml", parse_all(["s1.with.rate=0.5"]))
    assert [(p.name, p.rate) for p in spec.penalties] == [("s11.energy", 0.5),
                                                          ("s12.energy", 0.5)]
    flow = loads(text, "f.yaml", parse_all(["s1.with={rate: 0.5}"]))
    assert flow.model_dump() == spec.model_dump()
    with pytest.raises(specc.SpecError) as info:      # the block's own check, at the --set
        loads(text, "f.yaml", parse_all(["s1.with.rte=0.5"]))
    assert "block 'res' has no parameter 'rte' (did you mean 'rate'?)" in str(info.value)
    with pytest.raises(specc.SpecError) as info:      # not a use: a layer has no `with:`
        loads(text, "f.yaml", parse_all(["pool.with.rate=0.5"]))
    assert "unknown key 'with' in a GlobalAveragePooling2D layer" in str(info.value)


def test_cli_expand_prints_the_result_and_validate_reports(capsys) -> None:
    assert main(["expand", MNIST, "--set", "dense4.units=12", "--set", "optimizer=sgd"]) == 0
    out = capsys.readouterr().out
    assert "{name: dense4, type: Dense, units: 12, activation: relu}" in out
    assert "optimizer: sgd" in out
    two = str(ROOT / "specs" / "two_outputs.yaml")
    assert main(["validate", MNIST, two, "--set", "name=1"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("--set name=1:1:6: error:") == 2
    assert "2 errors in 2 of 2 files" in captured.err
    assert main(["explain", MNIST, "--set", "dense4_energy.rate=5e-2"]) == 0
    assert "l2(rate=0.05)" in capsys.readouterr().out


def test_a_cli_set_does_not_reach_a_later_load(capsys) -> None:
    """Overrides travel with the call that takes them, not in process state."""
    assert main(["validate", MNIST, "--set", "dense4.units=12"]) == 0
    assert main(["validate", MNIST, "--set", "name=1"]) == 1
    capsys.readouterr()
    spec = specc.load(MNIST)
    assert spec.layer_map()["dense4"].units != 12 and spec.name == "mnist_cnn"
    changed = specc.load(MNIST, overrides=parse_all(["dense4.units=12"]))
    assert changed.layer_map()["dense4"].units == 12


def test_fit_sweep_writes_one_run_per_value_and_a_comparison(tmp_path, capsys) -> None:
    pytest.importorskip("keras")
    out = tmp_path / "sweep"
    assert main(["fit", MNIST, "--set", "dense4_energy.rate=0,1e-3", "--set", "dense4.units=4",
                 "--epochs", "1", "--samples", "32", "--batch-size", "16",
                 "--out", str(out)]) == 0
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["dense4_energy.rate=0", "dense4_energy.rate=1e-3"]
    assert all((out / r / "history.json").is_file() for r in runs)
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["dense4_energy.rate"] for r in rows] == ["0", "1e-3"]
    assert float(rows[0]["dense4_energy"]) == 0.0 and float(rows[1]["dense4_energy"]) > 0.0
    assert {"loss", "task_loss", "decay", "val_task_loss"} <= set(rows[0])
    assert (out / "sweep.png").stat().st_size > 0
    assert "dense4_energy.rate  run" in capsys.readouterr().out
