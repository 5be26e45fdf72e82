"""Files specc writes: models that save and reload, atomic writes, odd output paths, signals,
and what a killed run left behind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specc
from specc.cli import main
from specc.spec.layers import LAYER_TYPES

ACTIVITY = """\
specc: 1
name: act
seed: 1
inputs:
  x: {shape: [5, 3]}
layers:
  - {name: ident, type: Identity}
  - {name: rnn, type: SimpleRNN, units: 4, return_sequences: true}
  - {name: sdrop, type: SpatialDropout1D, rate: 0.5}
  - {name: pool, type: GlobalAveragePooling1D}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
penalties:
  - {name: p_ident, layer: ident, kind: l2, rate: 0.1}
  - {name: p_rnn, layer: rnn, kind: l2, rate: 0.1}
  - {name: p_sdrop, layer: sdrop, kind: l1, rate: 0.1}
"""


def test_activity_clauses_on_layers_keras_will_not_regularize(tmp_path: Path, capsys) -> None:
    """Identity (not saveable with an activity_regularizer), SimpleRNN (drops it silently) and
    SpatialDropout (refuses it) carry their clause on an identity layer after them."""
    keras = pytest.importorskip("keras")
    spec_path = tmp_path / "act.yaml"
    spec_path.write_text(ACTIVITY)
    out = tmp_path / "act.keras"
    assert main(["build", str(spec_path), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = keras.saving.load_model(out, safe_mode=True)
    rng = np.random.RandomState(0)
    x = rng.randn(6, 5, 3).astype("float32")
    y = rng.randn(6, 1).astype("float32")
    logs = loaded.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
    rnn = keras.Model(loaded.inputs, loaded.get_layer("rnn").output).predict(x, verbose=0)
    a = rnn.astype("float64").reshape(6, -1)
    assert logs["p_ident"] == pytest.approx(0.1 * np.mean(np.sum(x.astype("float64").reshape(
        6, -1) ** 2, axis=1)), rel=1e-5)
    assert logs["p_rnn"] == pytest.approx(0.1 * np.mean(np.sum(a ** 2, axis=1)), rel=1e-5)
    # SpatialDropout is the identity at evaluation
    assert logs["p_sdrop"] == pytest.approx(0.1 * np.mean(np.sum(np.abs(a), axis=1)), rel=1e-5)
    fresh = specc.build(specc.loads(ACTIVITY, "act.yaml"))
    assert fresh.evaluate(x, y, batch_size=6, verbose=0, return_dict=True) == pytest.approx(logs)


def test_every_layer_that_keeps_its_activity_regularizer_saves_it() -> None:
    """Each catalog layer whose clause goes on its own activity_regularizer accepts it, keeps
    it (not handed to a sublayer) and writes it into a config that deserializes back."""
    keras = pytest.importorskip("keras")
    from specc.runtime.objects import ActivityPenalty
    from test_layers_catalog import REQUIRED, spec

    problems = []
    for name, cls in LAYER_TYPES.items():
        if not cls.regularizes_own_output:
            continue
        clause = {"name": "a", "kind": "l2", "params": {"rate": 0.1}}
        reg = ActivityPenalty([clause])
        kwargs = ({"layer": keras.layers.LSTM(2)} if name == "Bidirectional" else
                  spec(name, **REQUIRED.get(name, {})).keras_kwargs())
        try:
            layer = getattr(keras.layers, name)(**kwargs, activity_regularizer=reg)
            again = keras.layers.deserialize(keras.layers.serialize(layer))
        except Exception as exc:           # noqa: BLE001 - collected and reported together
            problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:80]}")
            continue
        if layer.activity_regularizer is not reg:
            problems.append(f"{name}: Keras does not keep the regularizer on the layer")
        elif not isinstance(again.activity_regularizer, ActivityPenalty) or \
                again.activity_regularizer.clauses != [clause]:
            problems.append(f"{name}: the regularizer is lost on save")
    assert not problems, "\n".join(problems)
