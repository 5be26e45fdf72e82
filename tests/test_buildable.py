"""Valid means buildable: every spec that `specc validate` accepts builds, compiles, evaluates
a batch, trains a step, saves and reloads with safe_mode=True — or fails with a located
SpecError, never another exception.

Valid mutants are drawn from the example specs (format 1, and the flat forms of the format 2
siamese and seq2seq examples, which hold shared layers, ports and call arguments) by changing
what users change: sizes, activations, dtypes, losses and metrics, axes, strategies, penalty
kinds and rates, return_sequences, shapes of the inputs. Invalid drafts are skipped (the
validation fuzzer covers them). CI runs SPECC_BUILDABLE_EXAMPLES (default 120); the long run:
`SPECC_BUILDABLE_EXAMPLES=2000 python -m pytest tests/test_buildable.py -q`.
"""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

keras = pytest.importorskip("keras")
import specc  # noqa: E402
from specc.errors import SpecError  # noqa: E402
from specc.expand import to_yaml  # noqa: E402
from specc.loader import load_file  # noqa: E402
from specc.validation import expand_document  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMALL_FORMAT2 = ("siamese", "seq2seq")
BASES = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "specs").glob("*.yaml"))
         if yaml.safe_load(p.read_text()).get("specc") == 1]
BASES += [yaml.safe_load(to_yaml(expand_document(load_file(ROOT / "specs" / f"{n}.yaml")).data))
          for n in SMALL_FORMAT2]
# keras.io's transformer (specs/transformer), made small: custom layers from a plugin
TRANSFORMER = ROOT / "specs" / "transformer"
_small = yaml.safe_load((TRANSFORMER / "transformer_text.yaml").read_text())
_small["inputs"]["tokens"]["shape"] = [12]
_small["layers"][0].update(maxlen=12, vocab_size=50, embed_dim=8)
_small["layers"][1].update(embed_dim=8, ff_dim=8)
BASES.append(_small)
EXAMPLES = int(os.environ.get("SPECC_BUILDABLE_EXAMPLES", "120"))


@pytest.fixture(scope="module", autouse=True)
def transformer_plugin():
    """The plugin of the transformer base, registered for this module's tests only."""
    import sys

    from specc import custom_layers

    sys.path.insert(0, str(TRANSFORMER))
    import transformer_layers  # noqa: F401

    yield
    for name in ("TokenAndPositionEmbedding", "TransformerBlock"):
        custom_layers.unregister_layer(name)
    sys.modules.pop("transformer_layers", None)
    sys.path.remove(str(TRANSFORMER))

ACTIVATIONS = ["relu", "tanh", "sigmoid", "softmax", "linear", "gelu", "elu", "selu", "swish",
               "log_softmax", "softplus", "hard_sigmoid", "exponential"]
LOSSES = ["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
          "mse", "mae", "huber", "cosine_similarity", "kl_divergence", "poisson", "hinge",
          "categorical_focal_crossentropy", "log_cosh"]
METRICS = ["accuracy", "mae", "mse", "sparse_categorical_accuracy", "categorical_accuracy",
           "binary_accuracy", "auc", "precision", "cosine_similarity", "top_k_categorical_accuracy"]
DTYPES = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "bool", "string"]
LAYER_DTYPES = [None, "float32", "float64", "bfloat16", "mixed_float16", "float16"]
VIAS = [None, "activity_regularizer", "add_loss", "output"]
KINDS = [{"kind": "l1", "rate": 1e-3}, {"kind": "l2", "rate": 1e-3},
         {"kind": "mean_abs", "rate": 1e-2}, {"kind": "kl_sparsity", "rate": 1e-2, "target": 0.1},
         {"kind": "decorrelation", "rate": 1e-2}, {"kind": "l1_l2", "l1": 1e-3, "l2": 1e-3}]


@st.composite
def valid_drafts(draw) -> dict:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    data.pop("seed", None)
    for inp in data["inputs"].values():
        if draw(st.integers(0, 9)) == 0:
            inp["dtype"] = draw(st.sampled_from(DTYPES))
        if draw(st.integers(0, 5)) == 0:
            inp["shape"] = draw(st.lists(st.integers(1, 10), min_size=1, max_size=4))
    for layer in data["layers"]:
        if "share" in layer:
            continue
        for key, values in (("units", st.integers(1, 24)), ("filters", st.integers(1, 12)),
                            ("kernel_size", st.integers(1, 4)), ("pool_size", st.integers(1, 3)),
                            ("activation", st.sampled_from(ACTIVATIONS)),
                            ("return_sequences", st.booleans()), ("axis", st.integers(-4, 3)),
                            ("rate", st.floats(0, 0.9)), ("padding", st.sampled_from(
                                ["valid", "same"]))):
            if key in layer and draw(st.integers(0, 3)) == 0:
                layer[key] = draw(values)
        if draw(st.integers(0, 12)) == 0:
            layer["dtype"] = draw(st.sampled_from(LAYER_DTYPES))
    outputs = data["outputs"]
    if draw(st.integers(0, 3)) == 0:
        data["loss"] = ({o: draw(st.sampled_from(LOSSES)) for o in outputs} if len(outputs) > 1
                        else draw(st.sampled_from(LOSSES)))
    if draw(st.integers(0, 3)) == 0:
        data["metrics"] = draw(st.lists(st.sampled_from(METRICS), max_size=2, unique=True))
    names = [l["name"] for l in data["layers"]]
    penalties = data.setdefault("penalties", [])
    for clause in penalties:
        if draw(st.integers(0, 2)) == 0:
            clause["via"] = draw(st.sampled_from(VIAS))
    if draw(st.booleans()):
        extra = {"name": f"extra{len(penalties)}", "layer": draw(st.sampled_from(names)),
                 **draw(st.sampled_from(KINDS))}
        if draw(st.booleans()):
            extra["at"] = "pre_activation"
        if via := draw(st.sampled_from(VIAS)):
            extra["via"] = via
        penalties.append(extra)
    data["optimizer"] = draw(st.sampled_from(["sgd", "adam", {"type": "sgd",
                                                              "learning_rate": 0.01}]))
    return data


def _loaded(data: dict) -> Any:
    try:
        return specc.loads(yaml.safe_dump(data, sort_keys=False), "draft.yaml")
    except SpecError:
        return None


def _batch(graph: Any, model: Any) -> tuple[Any, Any]:
    from specc.data import synthetic
    from specc.fit import _output_shapes

    x, y = synthetic(graph, _output_shapes(model), n=4, seed=0)
    names = [name for name, _, _ in graph.inputs]
    x = x[names[0]] if len(names) == 1 else [x[n] for n in names]
    y = y[graph.outputs[0]] if len(graph.outputs) == 1 else [y[o] for o in graph.outputs]
    return x, y


def builds_trains_saves(spec: Any, tmp: Path) -> str:
    """Build, compile, evaluate, fit one step, save, reload: the outcome, or raise."""
    try:
        graph = specc.lower(spec)
        from specc.runtime import emit

        model = emit(graph)
    except SpecError as exc:
        assert exc.code == "build" and exc.line >= 1, str(exc)
        return "build error"
    model.run_eagerly = True             # a step each, not a trace each: keeps the run short
    x, y = _batch(graph, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.evaluate(x, y, batch_size=4, verbose=0)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        path = tmp / "m.keras"
        model.save(path)
        again = keras.saving.load_model(path, safe_mode=True)
    assert again.count_params() == model.count_params()
    return "trained and saved"


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(draft=valid_drafts())
def test_valid_specs_build_train_and_save(draft: dict, tmp_path_factory) -> None:
    spec = _loaded(draft)
    if spec is None:
        return
    keras.backend.clear_session()
    builds_trains_saves(spec, tmp_path_factory.mktemp("m"))


def test_the_drafts_are_mostly_valid_and_varied() -> None:
    """The property is not vacuous: most drafts validate, and they cover several bases."""
    seen: list[str] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(draft=valid_drafts())
    def collect(draft: dict) -> None:
        if _loaded(draft) is not None:
            seen.append(draft["name"])

    collect()
    assert len(seen) >= 20 and len(set(seen)) >= 4, seen
