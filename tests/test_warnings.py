"""Warnings: valid but suspicious specs. They are located like errors, printed by `specc
validate` in every format, and never fail it (exit 0) unless `--strict`; `specc.load` still
raises only for errors. No TensorFlow here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import specc
from specc.cli import main
from specc.rules import spec_warnings

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
specc: 1
name: w
inputs: {x: {shape: [8]}}
layers:
  - {name: h, type: Dense, units: 4, activation: ACT}
  - {name: drop, type: Dropout, rate: 0.5}
  - {name: out, type: Dense, units: 3, activation: softmax}
outputs: [out]
loss: categorical_crossentropy
"""


def warnings_of(text: str) -> list[tuple[int, str, str]]:
    spec = specc.loads(text, "w.yaml")           # valid: load does not raise
    diags = spec_warnings(spec)
    assert all(d.severity == "warning" and d.file == "w.yaml" for d in diags)
    return [(d.line, d.code, d.message) for d in diags]


def with_penalty(clause: str, act: str = "relu") -> str:
    return BASE.replace("ACT", act) + f"penalties:\n  - {clause}\n"


def test_a_plain_spec_has_no_warnings() -> None:
    assert warnings_of(BASE.replace("ACT", "relu")) == []


@pytest.mark.parametrize("act,warned", [("relu", True), ("tanh", True), ("linear", True),
                                        ("sigmoid", False), ("hard_sigmoid", False),
                                        ("softmax", False)])
def test_kl_sparsity_wants_outputs_in_zero_one(act: str, warned: bool) -> None:
    text = with_penalty("{name: sparse, layer: h, kind: kl_sparsity, rate: 0.1, target: 0.05}",
                        act)
    got = warnings_of(text)
    if not warned:
        assert got == []
        return
    assert got == [(11, "kl-range", (
        "penalty 'sparse': kl_sparsity compares mean activations with a target in (0, 1), but "
        f"layer 'h' (Dense) gives its output (activation {act}), which is not bounded to "
        "(0, 1): the means are clipped and the term stops teaching; penalize a sigmoid "
        "output"))]


def test_kl_sparsity_before_a_sigmoid_and_through_pooling() -> None:
    pre = with_penalty("{name: s, layer: h, at: pre_activation, kind: kl_sparsity, rate: 0.1, "
                       "target: 0.1}", "sigmoid")
    assert [c for _, c, m in warnings_of(pre)] == ["kl-range"]
    assert "gives the values before its activation" in warnings_of(pre)[0][2]
    pooled = """\
specc: 1
name: w
inputs: {x: {shape: [8, 8, 1]}}
layers:
  - {name: c, type: Conv2D, filters: 2, kernel_size: 3, activation: sigmoid}
  - {name: p, type: MaxPooling2D, pool_size: 2}
  - {name: f, type: Flatten}
  - {name: out, type: Dense, units: 3, activation: softmax}
outputs: [out]
loss: categorical_crossentropy
penalties:
  - {name: s, layer: f, kind: kl_sparsity, rate: 0.1, target: 0.1}
"""
    assert warnings_of(pooled) == []                    # max pooling keeps (0, 1)
    assert [c for _, c, _ in warnings_of(pooled.replace("sigmoid}", "relu}"))] == ["kl-range"]


def test_sum_reduction_grows_with_the_batch() -> None:
    text = with_penalty("{name: e, layer: h, kind: l2, rate: 0.1, reduction: sum}")
    assert [(l, c) for l, c, _ in warnings_of(text)] == [(11, "sum-reduction")]
    assert "grows with the batch size" in warnings_of(text)[0][2]
    assert warnings_of(text.replace("reduction: sum", "reduction: mean")) == []


@pytest.mark.parametrize("layer,word", [("out", "reads"), ("drop", "is")])
def test_a_clause_on_or_after_dropout(layer: str, word: str) -> None:
    text = with_penalty(f"{{name: e, layer: {layer}, kind: l2, rate: 0.1}}")
    assert warnings_of(text) == [(11, "after-dropout", (
        f"penalty 'e': '{layer}' {word} layer 'drop' (Dropout), which acts only in training: "
        "the term sees noisy values in fit and clean ones in evaluate, so its train and val_ "
        "values differ; penalize the layer before the noise"))]
    assert warnings_of(with_penalty("{name: e, layer: h, kind: l2, rate: 0.1}")) == []


def test_pre_activation_without_activation_and_zero_rates() -> None:
    text = with_penalty("{name: e, layer: h, at: pre_activation, kind: l1, rate: 0.0}", "linear")
    # ordered by column: the clause's name (zero-rate), then its `at` (pre-activation)
    assert [(l, c) for l, c, _ in warnings_of(text)] == [(11, "zero-rate"),
                                                         (11, "pre-activation")]


def test_weight_clause_on_a_frozen_layer() -> None:
    text = BASE.replace("ACT", "relu").replace("units: 4,", "units: 4, trainable: false,") + \
        "weight_penalties:\n  - {name: decay, layers: [h, out], kind: l2, rate: 1.0e-4}\n"
    assert [(l, c) for l, c, _ in warnings_of(text)] == [(11, "frozen")]
    assert "hits frozen layers ('h')" in warnings_of(text)[0][2]


@pytest.mark.parametrize("loss,act,warned", [
    ("categorical_crossentropy", "linear", "expects probabilities"),
    ("categorical_crossentropy", "relu", "expects probabilities"),
    ("{type: categorical_crossentropy, from_logits: true}", "softmax", "applied twice"),
    ("{type: categorical_crossentropy, from_logits: true}", "linear", None),
    ("categorical_crossentropy", "softmax", None),
    ("binary_crossentropy", "sigmoid", None),
    ("mse", "linear", None),
])
def test_logits_and_probabilities(loss: str, act: str, warned: str | None) -> None:
    text = BASE.replace("ACT", "relu").replace("activation: softmax", f"activation: {act}") \
        .replace("loss: categorical_crossentropy", f"loss: {loss}")
    got = warnings_of(text)
    if warned is None:
        assert got == []
    else:
        assert [(l, c) for l, c, _ in got] == [(9, "from-logits")] and warned in got[0][2]


def test_examples_warn_only_where_they_mean_it() -> None:
    found = {p.name: [d.code for d in spec_warnings(specc.load(p))]
             for p in sorted((ROOT / "specs").glob("*.yaml"))}
    # question_mlp answers the README's question with the literal reduce_sum of the classic
    # add_loss example: `reduction: sum` on purpose
    assert found.pop("question_mlp.yaml") == ["sum-reduction"]
    assert all(codes == [] for codes in found.values()), found


# -- the command line --------------------------------------------------------------------

SUM = with_penalty("{name: e, layer: h, kind: l2, rate: 0.1, reduction: sum}")
#: Where the warning points: the value of `reduction` on line 11.
COLUMN = SUM.splitlines()[10].index("sum}") + 1


@pytest.fixture
def warned_spec(tmp_path: Path) -> str:
    path = tmp_path / "warned.yaml"
    path.write_text(SUM)
    return str(path)


def test_validate_prints_warnings_and_passes(warned_spec: str, capsys) -> None:
    assert main(["validate", warned_spec]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{warned_spec}:11:{COLUMN}: warning: penalty 'e': `reduction: sum` "
                          "adds ")
    assert out.rstrip().endswith("[sum-reduction]")
    assert err == "1 spec file valid (1 warning)\n"


def test_strict_fails_on_warnings(warned_spec: str, capsys) -> None:
    assert main(["validate", "--strict", warned_spec]) == 1
    assert main(["validate", "--strict", str(ROOT / "specs/mnist_cnn.yaml")]) == 0


def test_warnings_in_json_and_github(warned_spec: str, capsys) -> None:
    capsys.readouterr()
    assert main(["validate", "--format", "json", warned_spec]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert (item["severity"], item["code"], item["line"], item["column"]) == (
        "warning", "sum-reduction", 11, COLUMN)
    assert main(["validate", "--format", "github", warned_spec]) == 0
    assert capsys.readouterr().out.startswith("::warning file=")


def test_errors_and_warnings_counted_apart(warned_spec: str, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("specc: 1\n")
    assert main(["validate", warned_spec, str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("5 errors in 1 of 2 files (1 warning)")


def test_warnings_survive_worker_processes(tmp_path: Path) -> None:
    text = with_penalty("{name: e, layer: h, kind: l2, rate: 0.1, reduction: sum}")
    for i in range(210):                                  # enough for forked workers
        (tmp_path / f"s{i:03d}.yaml").write_text(text)
    out = subprocess.run([sys.executable, "-m", "specc", "validate", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.count(": warning: ") == 210
    assert out.stderr == "210 spec files valid (210 warnings)\n"


def test_explain_lists_warnings(warned_spec: str, capsys) -> None:
    assert main(["explain", warned_spec]) == 0
    text = capsys.readouterr().out
    assert f"\nwarnings:\n  11:{COLUMN}: penalty 'e': `reduction: sum`" in text
