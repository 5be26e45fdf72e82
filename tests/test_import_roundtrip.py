"""Round trip (issue 20): every spec in specs/ is built, saved as .keras, and imported back
with `specc import` (folded, the command's default; `--weights`). The imported spec must
validate, build the same structure (layer classes, weight and output shapes, the clauses each
carrier holds, parameter counts), give the same outputs and the same loss, term by term, on a
fixed batch, and compile with the same optimizer. Every number compared comes from the
original model, built from the original spec; none from the importer.

Tolerance: outputs and logged values within a relative 1e-6 (of the largest |output|, of each
value; absolute 1e-7 for values near 0). The two models run the same layers on the same
weights, so they agree to the bit here; the tolerance only allows another CPU's fusion.

Sizes: unet, mobilenet_v2 and the ResNets are built on 32×32 inputs (`--set`; their
parameters do not depend on the input size). The two ResNets (25.6M and 44.7M parameters)
are imported from the model in memory (importer.convert, folded, as the command does) and
given the source's weights in memory (importer.assign), not through a .keras file and a
weights file of 100-180 MB; ResNet101 is compared by structure only (STRUCTURE_ONLY), to
keep this module near a minute of CPU. The text spec's TextVectorization is adapted on a
few fixed strings (TEXTS) before the model is saved (Keras saves a lookup without a
vocabulary but cannot load it), and its batch is texts with words in and out of it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import specc
from specc import config, importer
from specc.cli import main
from specc.loader import load_text
from specc.overrides import parse_all

from helpers import SPECS

PLUGIN_OPTIONS = config.Options(
    plugins=(str(SPECS / "siamese_contrastive" / "siamese_plugin.py"), "transformer_layers"),
    plugin_paths=(str(SPECS / "transformer"),))
PLUGIN_FLAGS = ["--plugin", str(SPECS / "siamese_contrastive" / "siamese_plugin.py"),
                "--plugin", str(SPECS / "transformer" / "transformer_layers.py")]
#: Specs built on smaller inputs than they declare (the parameter counts are the same).
SMALL: dict[str, list[str]] = {
    "unet": ["inputs.image.shape=[32, 32, 3]"],
    "mobilenet_v2": ["inputs.image.shape=[32, 32, 3]"],
    "resnet50": ["inputs.image.shape=[32, 32, 3]"],
    "variants/resnet101": ["inputs.image.shape=[32, 32, 3]"],
}
#: Imported from the model in memory, with its weights assigned in memory (see above).
IN_MEMORY = {"resnet50", "variants/resnet101"}
#: Compared by structure only (no forward pass): ResNet101 is ResNet50 with 17 more blocks
#: of the same kind, whose outputs and terms test_every_spec_round_trips[resnet50] checks.
STRUCTURE_ONLY = {"variants/resnet101"}
RTOL = 1e-6
ATOL = 1e-7


def model_specs() -> list[str]:
    """Every model spec under specs/ (a block library, with no `name:`, is not a model)."""
    found = []
    for path in sorted(SPECS.rglob("*.yaml")):
        if re.search(r"^name:", path.read_text(encoding="utf-8"), re.MULTILINE):
            found.append(path.relative_to(SPECS).with_suffix("").as_posix())
    return found


def _clauses(obj: Any) -> list[dict[str, Any]]:
    return [dict(c) for c in getattr(obj, "clauses", None) or ()]


def signature(model: Any) -> list[tuple]:
    """The model's structure, names left out: each layer's class, weight shapes, output
    shapes, and the clauses it carries (tap, activity regularizer, weight regularizers)."""
    out = []
    for layer in model.layers:
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        regs = [_clauses(getattr(w, "regularizer", None)) for w in layer.weights]
        out.append(repr((type(layer).__name__, [tuple(w.shape) for w in layer.weights],
                         [tuple(t.shape) for t in outputs], _clauses(layer),
                         _clauses(getattr(layer, "activity_regularizer", None)), regs)))
    return sorted(out)


#: What a text spec's lookups are adapted on before the model is saved (Keras cannot load a
#: lookup without a vocabulary; `specc fit` adapts on the training data), and what its batch
#: reads: these and words they do not hold.
TEXTS = ["The film was good.", "a bad film, not good", "Great acting and a good story", "dull"]


def adapt_lookups(model: Any) -> None:
    """Adapt each lookup of the model that has no vocabulary yet on TEXTS."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.TextVectorization) and \
                not layer.get_vocabulary(include_special_tokens=False):
            layer.adapt(np.array(TEXTS))


def batch(model: Any, n: int = 4, seed: int = 0) -> tuple[Any, Any]:
    """A fixed batch: inputs (ids below every vocabulary for integer inputs, texts for string
    inputs, 6 steps for a variable axis) and targets of the declared outputs' shapes."""
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        shape = (n, *[d or 6 for d in t.shape[1:]])
        if t.dtype == "string":
            xs.append(np.resize(np.array([TEXTS[1], "an unseen film", TEXTS[2], ""],
                                         dtype=object), shape))
        else:
            xs.append(rng.integers(0, 40, shape).astype(t.dtype) if "int" in str(t.dtype)
                      else rng.standard_normal(shape).astype("float32"))
    declared = len(model.declared_outputs)
    preds = keras.tree.flatten(model(xs if len(xs) > 1 else xs[0], training=False))[:declared]
    sparse = "sparse" in str(model.get_compile_config()["loss"])
    ys = [rng.integers(0, p.shape[-1], p.shape[:-1]) if sparse
          else rng.uniform(0, 1, p.shape).astype("float32") for p in preds]
    return (xs if len(xs) > 1 else xs[0]), (ys if len(ys) > 1 else ys[0])


def logged(model: Any, x: Any, y: Any) -> dict[str, float]:
    """What evaluate logs for one batch, computed eagerly: the total, task_loss, each clause's
    term, each output's loss and metrics (output names with '.' read as '_')."""
    y_pred = model(x, training=False)
    total = model.compute_loss(x, y, y_pred, training=False)
    values = {k.replace(".", "_"): float(v)
              for k, v in model.compute_metrics(x, y, y_pred).items()}
    values["loss"] = float(total)
    return values


def close(a: float, b: float) -> bool:
    return abs(a - b) <= ATOL + RTOL * abs(a)


def optimizer_config(model: Any) -> dict[str, Any]:
    return {k: v for k, v in model.optimizer.get_config().items() if k != "name"}


def imported_from_file(name: str, original: Any, tmp_path: Path,
                       capsys: pytest.CaptureFixture) -> Path:
    """`specc import MODEL.keras -o SPEC.yaml --weights --check` (the command, in this
    process)."""
    saved = tmp_path / "model.keras"
    original.save(saved)
    out = tmp_path / "imported.yaml"
    code = main(["import", str(saved), "-o", str(out), "--weights", "--check", *PLUGIN_FLAGS])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"wrote {out}" in printed.out
    assert "check: structure same" in printed.out          # --check finds every layer
    return out


def assert_same(original: Any, rebuilt: Any, text: str, forward: bool = True) -> None:
    """The rebuilt model against the original: structure, parameters, the terms in order,
    the optimizer; with `forward`, outputs and every logged value on a fixed batch."""
    assert signature(rebuilt) == signature(original)
    assert rebuilt.count_params() == original.count_params()
    assert rebuilt._specc["order"] == original._specc["order"]       # the terms, in order
    assert optimizer_config(rebuilt) == optimizer_config(original)
    assert ("penalties:" in text) == bool(original._specc["order"])
    if not forward:
        return
    x, y = batch(original)
    want = [np.asarray(a) for a in keras.tree.flatten(original(x, training=False))]
    got = [np.asarray(a) for a in keras.tree.flatten(rebuilt(x, training=False))]
    assert len(got) == len(want)
    for a, b in zip(want, got):
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)) <= RTOL * max(float(np.max(np.abs(a))), 1e-30)
    want_logs, got_logs = logged(original, x, y), logged(rebuilt, x, y)
    assert sorted(got_logs) == sorted(want_logs)
    terms = {n.replace(".", "_") for n in original._specc["order"]}
    assert terms <= set(want_logs)                              # each clause's own term
    for key, value in want_logs.items():
        assert close(value, got_logs[key]), (key, value, got_logs[key])


@pytest.mark.parametrize("name", model_specs())
def test_every_spec_round_trips(name: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture) -> None:
    with config.plugins_imported(PLUGIN_OPTIONS):
        original = specc.build(specc.load(SPECS / f"{name}.yaml",
                                          overrides=parse_all(SMALL.get(name, []))))
        adapt_lookups(original)
        if name in IN_MEMORY:
            imported = importer.convert(original, fold=True)
            text = importer.validated_text(imported)
            rebuilt = specc.build(specc.loads(text, "imported.yaml"))
            importer.assign(rebuilt, imported)
        else:
            path = imported_from_file(name, original, tmp_path, capsys)
            text = path.read_text(encoding="utf-8")
            rebuilt = specc.build(specc.load(path))      # it validates, and reads its weights
        assert_same(original, rebuilt, text, forward=name not in STRUCTURE_ONLY)
    assert EXPECTED.get(name, "") in text


#: Lines an import writes as the spec's author wrote them: unet's clause, in its folded block;
#: the note on the text spec's adapted vocabulary.
EXPECTED = {"unet": "    penalties:\n      - {name: energy, layer: add, kind: l2, rate: 1.0e-07}\n",
            "text_classification/text_classification":
                "# adapted vocabulary written inline (`vocabulary:`): vectorize\n"}


#: What specs/ does not show: a mask (format 1 reads it only where a clause says `mask:
#: true`), scheduled rates and loss weight, `via: output` and a batch statistic on the
#: activity regularizer, `at: pre_activation` on the default strategy, a weight clause on a
#: recurrent layer's kernels and biases, a learning-rate schedule, two metrics.
EVERYTHING_ELSE = """\
specc: 1
name: everything_else
inputs:
  ids: {shape: [7], dtype: int32}
layers:
  - {name: emb, type: Embedding, input_dim: 50, output_dim: 6, mask_zero: true}
  - {name: rnn, type: LSTM, units: 5, return_sequences: true}
  - {name: code, type: Dense, units: 4, activation: sigmoid}
  - {name: pool, type: GlobalAveragePooling1D}
  - {name: out, type: Dense, units: 3, activation: softmax}
outputs: [out]
loss: {type: categorical_crossentropy, label_smoothing: 0.1}
loss_weights: {schedule: linear, from: 1.0, to: 0.5, steps: 100}
penalties:
  - {name: rnn_ar, layer: rnn, kind: ar, rate: 2.0, mask: true}
  - {name: rnn_tar, layer: rnn, kind: tar, rate: {schedule: cosine, from: 1.0, to: 0.1, steps: 50}, via: output}
  - {name: code_kl, layer: code, kind: kl_sparsity, rate: 0.001, target: 0.05, axis: -1, via: activity_regularizer}
  - {name: code_l1l2, layer: code, at: pre_activation, kind: l1_l2, l1: 0.01, l2: 0.02}
weight_penalties:
  - {name: rec, layers: rnn, weights: [kernel, bias], kind: l2, rate: 0.001}
optimizer: {type: sgd, learning_rate: {schedule: ExponentialDecay, initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.9}, momentum: 0.5}
metrics: [categorical_accuracy, auc]
"""


#: Layers Keras will not regularize themselves (an identity `<layer>_activity` carries the
#: clause: MultiHeadAttention, Dropout, a shared layer), a Bidirectional and a
#: MultiHeadAttention under one weight clause, a mask with `mask: false` in format 2.
WRAPPERS = """\
specc: 2
name: wrappers
inputs:
  ids: {shape: [6], dtype: int32}
  other: {shape: [6], dtype: int32}
layers:
  - {name: emb, type: Embedding, input_dim: 50, output_dim: 8, mask_zero: true, from: ids}
  - {name: emb2, share: emb, from: other}
  - {name: bi, type: Bidirectional, layer: {type: GRU, units: 4, return_sequences: true}, from: emb}
  - {name: att, type: MultiHeadAttention, num_heads: 2, key_dim: 4, from: [bi, bi]}
  - {name: drop, type: Dropout, rate: 0.1}
  - {name: pool, type: GlobalAveragePooling1D}
  - {name: pool2, type: GlobalAveragePooling1D, from: emb2}
  - {name: cat, type: Concatenate, from: [pool, pool2]}
  - {name: out, type: Dense, units: 2, activation: softmax}
outputs: [out]
loss: categorical_crossentropy
penalties:
  - {name: att_l2, layer: att, kind: l2, rate: 0.01}
  - {name: drop_l1, layer: drop, kind: l1, rate: 0.01, mask: false}
  - {name: emb2_dec, layer: emb2, kind: decorrelation, rate: 0.1, axis: -1}
weight_penalties:
  - {name: rec, layers: [bi, att], kind: l2, rate: 0.001}
  - {name: embw, layers: emb, kind: l1, rate: 0.0001}
optimizer: {type: adamw, learning_rate: 0.002, weight_decay: 0.01, clipnorm: 1.0}
metrics: [accuracy]
"""


@pytest.mark.parametrize(("source", "same"), [
    (EVERYTHING_ELSE, ("outputs", "loss", "loss_weights", "penalties", "weight_penalties",
                       "optimizer", "metrics")),
    # the share is written `emb_call2` (the walk's name for a layer's second call)
    (WRAPPERS, ("outputs", "loss", "weight_penalties", "optimizer", "metrics")),
], ids=["everything_else", "wrappers"])
def test_what_specs_do_not_show_round_trips(source: str, same: tuple[str, ...],
                                            tmp_path: Path, capsys) -> None:
    path = tmp_path / "source.yaml"
    path.write_text(source, encoding="utf-8")
    original = specc.build(path)
    out = imported_from_file("source", original, tmp_path, capsys)
    text = out.read_text(encoding="utf-8")
    assert_same(original, specc.build(specc.load(out)), text)
    # the person's spec back, section by section (the layers' arguments aside)
    written = load_text(source, "source.yaml").data
    got = load_text(text, "imported.yaml").data
    for key in same:
        assert got[key] == written[key], key
    if source is WRAPPERS:
        assert [{k: v for k, v in c.items() if k != "layer"} for c in got["penalties"]] == \
            [{k: v for k, v in c.items() if k != "layer"} for c in written["penalties"]]


def my_loss(y_true: Any, y_pred: Any) -> Any:
    return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)


def test_a_keras_models_compile_config_becomes_its_sections(tmp_path: Path, capsys) -> None:
    """A model compiled in Keras (not by specc): its losses, weights, metrics and optimizer
    come back as the spec's sections, and the spec's model computes Keras's loss; what has
    no spec form is a note in the spec's header, one line each."""
    a = keras.Input((5,), name="a")
    h = keras.layers.Dense(8, activation="relu", name="h")(a)
    p = keras.layers.Dense(3, activation="softmax", name="p")(h)
    v = keras.layers.Dense(1, name="v")(h)
    model = keras.Model(a, [p, v])
    schedule = keras.optimizers.schedules.CosineDecay(0.01, 100)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule, beta_1=0.8,
                                                  amsgrad=True),
                  loss=[keras.losses.CategoricalCrossentropy(label_smoothing=0.2), "mse"],
                  loss_weights=[1.0, 0.25],
                  metrics=[["accuracy"], ["mae", keras.metrics.RootMeanSquaredError()]])
    saved, out = tmp_path / "m.keras", tmp_path / "m.yaml"
    model.save(saved)
    assert main(["import", str(saved), "-o", str(out), "--weights"]) == 0
    text = out.read_text(encoding="utf-8")
    data = load_text(text, "m.yaml").data
    assert data["loss"] == {"p": {"type": "categorical_crossentropy", "label_smoothing": 0.2},
                            "v": "mse"}
    assert data["loss_weights"] == {"p": 1.0, "v": 0.25}
    assert data["optimizer"] == {"type": "adam", "beta_1": 0.8, "learning_rate": {
        "schedule": "CosineDecay", "initial_learning_rate": 0.01, "decay_steps": 100}}
    assert data["metrics"] == {"p": ["accuracy"], "v": ["mae", "root_mean_squared_error"]}
    assert "# optimizer Adam: amsgrad=True has no spec form, left out\n" in text
    rebuilt = specc.build(specc.load(out))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5)).astype("float32")
    y = [rng.uniform(0, 1, (6, 3)).astype("float32"), rng.standard_normal((6, 1)).astype("float32")]
    want = float(model.compute_loss(x, y, model(x), training=False))
    got = float(rebuilt.compute_loss(x, y, rebuilt(x), training=False))
    assert close(want, got), (want, got)
    config = optimizer_config(rebuilt)
    assert {**optimizer_config(model), "amsgrad": False} == config

    model.compile(optimizer="sgd", loss=my_loss)            # a loss a spec cannot name
    model.save(saved)
    out.unlink()
    assert main(["import", str(saved), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "# loss of p: categorical_crossentropy, chosen from its activation (the compiled " \
           "loss has no spec form: 'my_loss' is not a catalog loss)\n" in text
    assert "# loss of v: mean_squared_error, chosen from its activation" in text
    assert "optimizer: sgd\n" in text
    capsys.readouterr()


def test_the_readme_round_trip_example_is_real(tmp_path: Path, capsys,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (SPECS.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Round trip.**"):]
    shown = section[section.index("```yaml\n") + 8:section.index("```\n", 10)]
    monkeypatch.chdir(tmp_path)
    assert main(["build", str(SPECS / "mnist_cnn.yaml"), "-o", "mnist_cnn.keras"]) == 0
    capsys.readouterr()
    assert main(["import", "mnist_cnn.keras"]) == 0
    printed = capsys.readouterr().out
    first = f"# Written by `specc import` from mnist_cnn.keras, Keras {keras.__version__}.\n"
    assert printed.startswith(first)
    assert printed[len(first):] == shown[shown.index("\n") + 1:]


PLUGIN_KIND = """\
specc: 1
name: plugged
inputs:
  x: {shape: [6]}
  target: {shape: [4]}
layers:
  - {name: h, type: Dense, units: 4, activation: tanh, from: x}
  - {name: out, type: Dense, units: 2}
outputs: [out]
loss: mse
penalties:
  - {name: peak, layer: h, kind: max_abs, rate: 0.5}
pair_penalties:
  - {name: match, layers: [h, target], kind: cosine, rate: 0.25, stop_gradient: false}
"""


def test_a_plugin_kind_and_a_pair_read_from_an_input_round_trip(tmp_path: Path,
                                                                 capsys) -> None:
    """A penalty kind a plugin registers comes back by its name (and without the plugin at
    import time, one line says which plugin is missing); a pair clause's target may be an
    input that no layer reads."""
    source = tmp_path / "plugged.yaml"
    source.write_text(PLUGIN_KIND, encoding="utf-8")
    options = config.Options(plugins=("specc_demo_plugin",),
                             plugin_paths=(str(SPECS.parent / "tests" / "plugins"),))
    with config.plugins_imported(options):
        original = specc.build(source)
        saved = tmp_path / "model.keras"
        original.save(saved)
        out = tmp_path / "imported.yaml"
        assert main(["import", str(saved), "-o", str(out), "--weights"]) == 0
        text = out.read_text(encoding="utf-8")
        assert_same(original, specc.build(specc.load(out)), text)
        model = importer.keras_file(saved)
    written = load_text(PLUGIN_KIND, "plugged.yaml").data
    got = load_text(text, "imported.yaml").data
    assert (got["penalties"], got["pair_penalties"]) == (written["penalties"],
                                                          written["pair_penalties"])
    capsys.readouterr()
    with pytest.raises(importer.ImportRefused) as refused:
        importer.convert(model)
    assert refused.value.lines == ["penalty clause 'peak': its kind 'max_abs' is not "
                                   "registered; give the plugin that registers it "
                                   "(--plugin MODULE)"]


def test_a_compiled_model_in_memory_gives_its_sections() -> None:
    """importer.convert of a compiled model (no file): the compile config is the model's own;
    a one-output loss and weight given as lists are one value; weighted_metrics is a note."""
    x = keras.Input((3,), name="x")
    model = keras.Model(x, keras.layers.Dense(2, name="y")(x))
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.01, rho=0.8),
                  loss=[keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)],
                  loss_weights=[2.0], weighted_metrics=["mae"])
    imported = importer.convert(model)
    data = imported.data
    assert (data["loss"], data["loss_weights"]) == (
        {"type": "binary_crossentropy", "from_logits": True, "label_smoothing": 0.1}, 2.0)
    assert data["optimizer"] == {"type": "rmsprop", "learning_rate": 0.01, "rho": 0.8}
    assert "metrics" not in data
    assert "weighted_metrics: no spec form, left out (a spec's metrics are not weighted by " \
           "sample_weight)" in imported.notes
    rebuilt = specc.build(specc.loads(importer.validated_text(imported), "m.yaml"))
    importer.assign(rebuilt, imported)
    rng = np.random.default_rng(2)
    xs, ys = rng.standard_normal((5, 3)) * 3, rng.uniform(0, 1, (5, 2))
    want = float(model.compute_loss(xs, ys, model(xs), training=False))
    assert close(want, float(rebuilt.compute_loss(xs, ys, rebuilt(xs), training=False)))
    model.compile(loss=keras.losses.Huber(delta=2.0))      # Keras saves no delta: a note
    imported = importer.convert(model)
    assert imported.data["loss"] == "huber"
    assert "loss of y: Keras does not save a Huber loss's delta: Keras's default (1.0) is " \
           "written; give the model's own with `{type: huber, delta: ...}`" in imported.notes
