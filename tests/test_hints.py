"""Diagnostics a new user tripped on: Keras habits and near-miss words get the right hint,
and libyaml's terse indentation errors say what they usually mean. No TensorFlow here."""
from __future__ import annotations

import pytest

import specc
from specc.errors import SpecError
from specc.hints import suggest

BASE = """\
specc: 1
name: m
inputs: {x: {shape: [8]}}
layers:
  - {name: h, type: Dense, units: 4}
  - {name: out, type: Dense, units: 3, activation: softmax}
outputs: [out]
loss: categorical_crossentropy
"""


def messages(text: str) -> list[tuple[int, str]]:
    try:
        specc.loads(text, "h.yaml")
    except SpecError as exc:
        return [(d.line, d.message) for d in exc.diagnostics]
    return []


def one(text: str) -> tuple[int, str]:
    got = messages(text)
    assert len(got) == 1, got
    return got[0]


def test_base_is_valid() -> None:
    assert messages(BASE) == []


# -- Keras habits ------------------------------------------------------------------------

def test_kernel_regularizer_points_at_weight_penalties() -> None:
    text = BASE.replace("units: 4}", "units: 4, kernel_regularizer: l2}")
    assert one(text) == (5, (
        "unknown key 'kernel_regularizer' in a Dense layer (weight regularizers are clauses "
        "under `weight_penalties:`, e.g. `weight_penalties: [{name: h_decay, layers: h, "
        "weights: kernel, kind: l2, rate: 1.0e-4}]`)"))


def test_bias_regularizer_names_the_bias() -> None:
    _, msg = one(BASE.replace("units: 4}", "units: 4, bias_regularizer: l1}"))
    assert "weights: bias, kind: l2" in msg


def test_example_of_the_hint_is_a_valid_clause() -> None:
    _, msg = one(BASE.replace("units: 4}", "units: 4, kernel_regularizer: l2}"))
    clause = msg.split("e.g. `")[1].rstrip("`)")
    assert messages(BASE + clause.replace(": [", ":\n  - ").rstrip("]") + "\n") == []


def test_activity_regularizer_points_at_penalties() -> None:
    text = BASE.replace("units: 4}", "units: 4, activity_regularizer: l2}")
    line, msg = one(text)
    assert (line, msg) == (5, (
        "unknown key 'activity_regularizer' in a Dense layer (a penalty on a layer's output "
        "is a clause under `penalties:`, e.g. `penalties: [{name: h_energy, layer: h, kind: "
        "l2, rate: 1.0e-3}]`)"))
    clause = msg.split("e.g. `")[1].rstrip("`)")
    assert messages(BASE + clause.replace(": [", ":\n  - ").rstrip("]") + "\n") == []


def test_lr_says_learning_rate() -> None:
    text = BASE + "optimizer: {type: adam, lr: 0.01}\n"
    assert one(text) == (9, "unknown key 'lr' (did you mean 'learning_rate'? `lr` is its old "
                            "Keras name)")


def test_acc_says_accuracy_not_auc() -> None:
    _, msg = one(BASE + "metrics: [acc]\n")
    assert "invalid value 'acc' (did you mean 'accuracy'?)" in msg


@pytest.mark.parametrize("key,hint", [
    ("input_shape", "declare the model's inputs under `inputs:`"),
    ("inputs", "a layer names what it reads with `from:`"),
])
def test_layer_keys_from_keras(key: str, hint: str) -> None:
    _, msg = one(BASE.replace("units: 4}", f"units: 4, {key}: [8]}}"))
    assert hint in msg


def test_training_settings_are_not_spec_keys() -> None:
    _, msg = one(BASE + "epochs: 10\n")
    assert "training settings are not part of the spec: give them to `specc fit`" in msg


# -- closed sets name the closest allowed word ------------------------------------------

@pytest.mark.parametrize("edit,expected", [
    (("loss: categorical_crossentropy", "loss: categorical_crossentropyy"),
     "(did you mean 'categorical_crossentropy'?)"),
    (("loss: categorical_crossentropy", "loss: CategoricalCrossentropy"),
     "(did you mean 'categorical_crossentropy'? specc takes Keras's snake_case names, not "
     "class names)"),
    (("loss: categorical_crossentropy", "loss: {type: CategoricalCrossentropy}"),
     "(did you mean 'categorical_crossentropy'? specc takes Keras's snake_case names"),
    (("outputs: [out]", "outputs: [out]\noptimizer: adamw2"), "(did you mean 'adamw'?)"),
    (("outputs: [out]", "outputs: [out]\noptimizer: {type: Adam}"),
     "(did you mean 'adam'? the words are case-sensitive)"),
    (("outputs: [out]", "outputs: [out]\nmetrics: [CategoricalAccuracy]"),
     "(did you mean 'categorical_accuracy'? specc takes Keras's snake_case names"),
    (("type: Dense, units: 4", "type: dense, units: 4"),
     "unknown layer type 'dense' (did you mean 'Dense'? the words are case-sensitive)"),
])
def test_closed_sets_suggest(edit: tuple[str, str], expected: str) -> None:
    _, msg = one(BASE.replace(*edit))
    assert expected in msg, msg


def test_weight_kind_and_penalty_kind() -> None:
    text = BASE + ("penalties:\n  - {name: p, layer: h, kind: L2, rate: 0.1}\n"
                   "weight_penalties:\n  - {name: w, layers: h, weights: kernels, kind: l2, "
                   "rate: 0.1}\n")
    got = messages(text)
    assert [line for line, _ in got] == [10, 12]
    assert got[0][1] == ("unknown penalty kind 'L2' (did you mean 'l2'? the words are "
                         "case-sensitive) (known: l1, l2, l1_l2, mean_abs, kl_sparsity, "
                         "decorrelation, ar, tar)")
    assert got[1][1].endswith("got a string 'kernels' (did you mean 'kernel'?)")


def test_suggest_table() -> None:
    words = ["accuracy", "auc", "categorical_accuracy", "kl_divergence", "l2",
             "root_mean_squared_error"]
    assert suggest("acc", words) == " (did you mean 'accuracy'?)"
    assert suggest("KLDivergence", words).startswith(" (did you mean 'kl_divergence'?")
    assert suggest("RootMeanSquaredError", words).startswith(
        " (did you mean 'root_mean_squared_error'?")
    assert suggest("rmse", words) == " (did you mean 'root_mean_squared_error'?)"
    assert suggest("L2", words).startswith(" (did you mean 'l2'?")
    assert suggest("zzzz", words) == ""
    assert suggest(3, words) == "" and suggest("", words) == ""
    assert len(suggest("x" * 10_000, words)) < 100


def test_a_float_for_a_size_says_how_to_write_it() -> None:
    text = BASE.replace("units: 4}", "units: 1e3}")
    line, msg = one(text)
    assert line == 5
    assert msg.endswith("units: expected an integer, got a number 1000.0 (with a point or an "
                        "exponent it is a float in YAML; write 1000)")


# -- YAML indentation --------------------------------------------------------------------

def test_list_item_indented_wrong() -> None:
    text = BASE.replace("  - {name: out", " - {name: out")
    line, msg = one(text)
    assert line == 6
    assert msg.startswith("invalid YAML: ")
    assert msg.endswith("this usually means a line is indented differently from the keys "
                        "before it in the same mapping, or a value holds ': ' and needs quotes")


def test_dash_indicator_error_says_what_it_usually_means() -> None:
    text = BASE.replace("  - {name: out, type: Dense, units: 3, activation: softmax}\n",
                        "  name: out\n")
    assert one(text) == (6, (
        "invalid YAML: did not find expected '-' indicator (while parsing a block collection "
        "that starts at line 5); this usually means a list item is indented differently from "
        "the items before it: every `- ` of one list starts in the same column"))


def test_unclosed_flow_list() -> None:
    assert one("specc: 1\nname: [m\n") == (3, (
        "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence that "
        "starts at line 2); this usually means a `[` list is not closed on its line, or an "
        "item holds a character that needs quotes"))


def test_syntax_errors_without_a_known_meaning_keep_their_text() -> None:
    _, msg = one("specc: 1\nname: 'm\n")
    assert msg.startswith("invalid YAML: ") and "usually means" not in msg
