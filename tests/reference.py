"""Independent references for the specc tests: nothing here imports or calls specc.

- The loss formulas of the README's "Penalties and the exact loss", written twice: in numpy
  float64 (`np_*`, for the values `evaluate` reports) and in TensorFlow ops (`tf_*`, for
  gradients).
- A hand-written Keras model for a spec: the YAML read with yaml.safe_load, plain
  `keras.layers.*` layers in a plain `keras.Model`, with every activation built as a separate
  step so that both the pre-activation and the output of each layer can be read.
- Batches of data for a spec, spec variants written to disk, and a few small helpers.
"""
from __future__ import annotations

import copy
import fnmatch
import glob
import hashlib
import os
from typing import Any

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def _format(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return int(yaml.safe_load(f).get("specc", 1))


#: The format 1 example specs: the hand-written reference below reads format 1 only (format 2
#: examples are checked against keras.applications and hand-written Keras models in
#: test_format2_models.py, and their blocks through the flat spec in test_format2_runtime.py).
SPEC_FILES = sorted(p for p in glob.glob(os.path.join(ROOT, "specs", "*.yaml"))
                    if _format(p) == 1)
STRATEGIES = (None, "activity_regularizer", "add_loss", "output")

EPS = 1e-7

#: Every activation penalty kind, the `reduction: sum` form, several clauses on one layer,
#: pre_activation on a split and on a linear layer, two inputs / two outputs, Dropout, every
#: weight kind: the specs/ directory lacks some of these combinations.
KITCHEN_SINK = """\
specc: 1
name: kitchen_sink
seed: 21
inputs:
  a: {shape: [6]}
  b: {shape: [5]}
layers:
  - {name: a_h, type: Dense, units: 12, activation: tanh, from: a}
  - {name: b_h, type: Dense, units: 6, activation: relu, from: b}
  - {name: merged, type: Concatenate, from: [a_h, b_h]}
  - {name: trunk, type: Dense, units: 10, activation: sigmoid}
  - {name: drop, type: Dropout, rate: 0.2}
  - {name: cls, type: Dense, units: 4, activation: softmax}
  - {name: reg, type: Dense, units: 2, from: trunk}
outputs: [cls, reg]
loss: {cls: categorical_crossentropy, reg: mae}
loss_weights: {cls: 0.7, reg: 2.0}
penalties:
  - {name: trunk_pre_sq_sum, layer: trunk, at: pre_activation, kind: l2, rate: 1.0e-3,
     reduction: sum, via: activity_regularizer}
  - {name: trunk_pre_l1, layer: trunk, at: pre_activation, kind: l1, rate: 1.0e-3,
     via: add_loss}
  - {name: trunk_kl, layer: trunk, kind: kl_sparsity, rate: 0.02, target: 0.2, via: output}
  - {name: trunk_decor, layer: trunk, kind: decorrelation, rate: 0.05}
  - {name: a_mean_abs, layer: a_h, kind: mean_abs, rate: 0.01, via: output}
  - {name: b_l1l2_sum, layer: b_h, kind: l1_l2, l1: 1.0e-3, l2: 2.0e-3, reduction: sum}
  - {name: b_l1l2, layer: b_h, kind: l1_l2, l1: 3.0e-3, l2: 1.0e-3, via: add_loss}
  - {name: reg_pre_l1, layer: reg, at: pre_activation, kind: l1, rate: 1.0e-3}
weight_penalties:
  - {name: kernels, layers: "*", weights: kernel, kind: l1_l2, l1: 1.0e-5, l2: 1.0e-4}
  - {name: biases, layers: ["*_h"], weights: [bias], kind: l1, rate: 1.0e-3}
  - {name: trunk_both, layers: [trunk], weights: [kernel, bias], kind: l2, rate: 1.0e-3}
optimizer: adam
metrics: {cls: [accuracy]}
"""

#: Layers whose `activation` argument the hand model applies as a separate step.
SPLITTABLE = {
    "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
    "DepthwiseConv2D",
}


# -- specs as plain data --------------------------------------------------------------------
def read_spec(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def write_spec(spec: dict, path: str) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False)
    return str(path)


def sgd_variant(spec: dict, lr: float = 0.1, dropout: float | None = 0.0) -> dict:
    """The same model with plain SGD(lr) and (optionally) every dropout rate set to `dropout`."""
    out = copy.deepcopy(spec)
    out["optimizer"] = {"type": "sgd", "learning_rate": lr}
    if dropout is not None:
        for layer in out["layers"]:
            if "Dropout" in layer["type"]:
                layer["rate"] = dropout
    return out


def spec_paths(tmp_dir) -> dict[str, str]:
    """Every spec of specs/ by id, and the kitchen-sink spec written into `tmp_dir`."""
    out = {spec_id(p): p for p in SPEC_FILES}
    sink = os.path.join(str(tmp_dir), "kitchen_sink.yaml")
    with open(sink, "w") as f:
        f.write(KITCHEN_SINK)
    out["kitchen_sink"] = sink
    return out


def spec_id(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def input_names(spec: dict) -> list[str]:
    return list(spec["inputs"])


def layer_names(spec: dict) -> list[str]:
    return [layer["name"] for layer in spec["layers"]]


def clause_names(spec: dict) -> list[str]:
    return [c["name"] for c in spec.get("penalties") or ()] + \
           [c["name"] for c in spec.get("pair_penalties") or ()] + \
           [c["name"] for c in spec.get("weight_penalties") or ()]


def as_model_input(spec: dict, x: dict) -> Any:
    """x (dict by input name) as Keras's positional form: one array or a list in spec order."""
    names = input_names(spec)
    return x[names[0]] if len(names) == 1 else [x[n] for n in names]


def as_model_target(spec: dict, y: dict) -> Any:
    outs = spec["outputs"]
    return y[outs[0]] if len(outs) == 1 else [y[o] for o in outs]


# -- the model written by hand --------------------------------------------------------------
class HandModel:
    """The spec's network in plain Keras; `pre[name]` / `out[name]` are each layer's tensors."""

    def __init__(self, spec: dict) -> None:
        import keras

        self.spec = spec
        inputs = {}
        for name, cfg in spec["inputs"].items():
            inputs[name] = keras.Input(shape=tuple(cfg["shape"]),
                                       dtype=cfg.get("dtype", "float32"), name=name)
        tensors: dict[str, Any] = dict(inputs)
        pre: dict[str, Any] = {}
        self.layers: dict[str, Any] = {}
        self.activation: dict[str, str] = {}
        previous = next(iter(inputs))
        for cfg in spec["layers"]:
            name, kind = cfg["name"], cfg["type"]
            args = {k: v for k, v in cfg.items() if k not in ("name", "type", "from")}
            src = cfg.get("from", previous)
            act = None
            if kind in SPLITTABLE and args.get("activation") not in (None, "linear"):
                act = args.pop("activation")
            if kind == "Bidirectional":
                inner = dict(args.pop("layer"))
                inner_kind = inner.pop("type")
                args["layer"] = getattr(keras.layers, inner_kind)(**inner)
            layer = getattr(keras.layers, kind)(name=name, **args)
            self.layers[name] = layer
            t = layer([tensors[s] for s in src] if isinstance(src, list) else tensors[src])
            pre[name] = t
            if act is not None:
                self.activation[name] = act
                t = keras.layers.Activation(act, name=f"hand__{name}__activation")(t)
            tensors[name] = t
            previous = name
        self.names = layer_names(spec)
        self.split = [n for n in self.names if n in self.activation]
        outputs = [tensors[n] for n in self.names] + [pre[n] for n in self.split]
        self.model = keras.Model(inputs=[inputs[n] for n in input_names(spec)],
                                 outputs=outputs, name=f"hand__{spec['name']}")

    def copy_weights_from(self, model: Any) -> None:
        """Copy the specc model's weights, layer by layer, matched by the spec's layer name."""
        copied = 0
        for name, layer in self.layers.items():
            source = model.get_layer(name).get_weights()
            layer.set_weights(source)
            copied += len(source)
        assert copied == len(model.weights), (copied, [w.path for w in model.weights])

    def __call__(self, x: dict, training: bool = False) -> tuple[dict, dict]:
        """(pre, out) tensors of every spec layer; pre is out where nothing was split."""
        values = self.model([x[n] for n in input_names(self.spec)], training=training)
        k = len(self.names)
        out = dict(zip(self.names, values[:k]))
        pre = dict(out)
        pre.update(zip(self.split, values[k:]))
        return pre, out

    def numpy(self, x: dict) -> tuple[dict, dict]:
        from keras.ops import convert_to_numpy

        pre, out = self(x, training=False)
        f = lambda d: {k: convert_to_numpy(v).astype(np.float64) for k, v in d.items()}  # noqa: E731
        return f(pre), f(out)

    def weight(self, layer: str, kind: str) -> Any:
        """The variable a weight penalty's `weights: kernel|bias` names on a spec layer."""
        lay = self.layers[layer]
        attr = {"kernel": "embeddings" if type(lay).__name__ == "Embedding" else "kernel",
                "bias": "bias"}[kind]
        if type(lay).__name__ not in SPLITTABLE | {"Embedding"}:
            raise NotImplementedError(f"reference weights of a {type(lay).__name__} layer")
        return getattr(lay, attr, None)


def weight_targets(spec: dict, hand: HandModel, clause: dict) -> list[Any]:
    """The variables a weight clause hits: globs on spec layer names x weight kinds."""
    patterns = clause["layers"]
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    kinds = clause.get("weights", "kernel")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    found = []
    for cfg in spec["layers"]:
        if not any(fnmatch.fnmatchcase(cfg["name"], p) for p in patterns):
            continue
        if cfg["type"] not in SPLITTABLE | {"Embedding"}:
            continue           # no kernel/bias (pooling, flatten, ...)
        for kind in kinds:
            if kind == "bias" and cfg.get("use_bias", True) is False:
                continue
            if kind == "bias" and cfg["type"] == "Embedding":
                continue
            var = hand.weight(cfg["name"], kind)
            if var is not None:
                found.append(var)
    return found


# -- data -----------------------------------------------------------------------------------
def make_batch(spec: dict, hand: HandModel, n: int, seed: int) -> tuple[dict, dict]:
    """Inputs keyed by input name, targets keyed by output name, fitting each output's loss."""
    rng = np.random.default_rng(seed)
    vocab = min([c["input_dim"] for c in spec["layers"] if c["type"] == "Embedding"] or [10])
    x = {}
    for name, cfg in spec["inputs"].items():
        shape = (n, *cfg["shape"])
        if str(cfg.get("dtype", "float32")).startswith("int"):
            x[name] = rng.integers(0, vocab, size=shape).astype(cfg["dtype"])
        else:
            x[name] = rng.normal(size=shape).astype("float32")
    y = {}
    for out in spec["outputs"]:
        shape = tuple(hand.model.get_layer(out).output.shape[1:])
        loss, _ = output_loss(spec, out)
        if loss == "categorical_crossentropy":
            y[out] = np.eye(shape[-1], dtype="float32")[rng.integers(0, shape[-1], size=n)]
        elif loss == "sparse_categorical_crossentropy":
            y[out] = rng.integers(0, shape[-1], size=(n,)).astype("int32")
        elif loss == "binary_crossentropy":
            y[out] = rng.integers(0, 2, size=(n, *shape)).astype("float32")
        else:
            y[out] = rng.normal(size=(n, *shape)).astype("float32")
    return x, y


# -- the task loss ----------------------------------------------------------------------------
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}


def output_loss(spec: dict, output: str) -> tuple[str, dict]:
    """(loss name, its arguments) for one output."""
    loss = spec["loss"]
    if isinstance(loss, dict) and "type" not in loss:
        loss = loss[output]
    if isinstance(loss, str):
        return _ALIASES.get(loss, loss), {}
    args = {k: v for k, v in loss.items() if k != "type"}
    return _ALIASES.get(loss["type"], loss["type"]), args


def loss_weight(spec: dict, output: str) -> float:
    w = spec.get("loss_weights")
    if w is None:
        return 1.0
    if isinstance(w, dict):
        return float(w.get(output, 1.0))
    if isinstance(w, list):
        return float(w[spec["outputs"].index(output)])
    return float(w)


def _np_log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_per_sample_loss(name: str, args: dict, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Keras's loss functions, per sample, in float64."""
    y = np.asarray(y, np.float64 if name != "sparse_categorical_crossentropy" else np.int64)
    p = np.asarray(p, np.float64)
    logits = args.get("from_logits", False)
    if args.get("label_smoothing"):
        raise NotImplementedError("label_smoothing")
    if name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        if name == "sparse_categorical_crossentropy":
            y = np.eye(p.shape[-1])[y.reshape(-1)]
        if logits:
            logp = _np_log_softmax(p)
        else:
            logp = np.log(np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS))
        return -(y * logp).sum(axis=-1)
    if name == "binary_crossentropy":
        if logits:
            p = 1.0 / (1.0 + np.exp(-p))
        p = np.clip(p, EPS, 1 - EPS)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=-1)
    if name == "mean_squared_error":
        return ((y - p) ** 2).mean(axis=-1)
    if name == "mean_absolute_error":
        return np.abs(y - p).mean(axis=-1)
    raise NotImplementedError(f"reference loss {name!r}")


def np_task_loss(spec: dict, y: dict, predictions: dict,
                 sample_weight: np.ndarray | None = None) -> float:
    """Σ_outputs loss_weight · Σ_i w_i·l_i / B (Keras's sum_over_batch_size), float64."""
    total = 0.0
    for out in spec["outputs"]:
        name, args = output_loss(spec, out)
        per_sample = np_per_sample_loss(name, args, y[out], predictions[out])
        per_sample = per_sample.reshape(len(per_sample), -1).mean(axis=1)
        w = np.ones(len(per_sample)) if sample_weight is None else np.asarray(sample_weight,
                                                                             np.float64)
        total += loss_weight(spec, out) * float((w * per_sample).sum() / len(per_sample))
    return total


def tf_task_loss(spec: dict, y: dict, predictions: dict,
                 sample_weight: np.ndarray | None = None) -> Any:
    """The same with plain Keras loss functions (differentiable)."""
    import keras

    total = 0.0
    for out in spec["outputs"]:
        name, args = output_loss(spec, out)
        per_sample = keras.losses.get(name)(y[out], predictions[out], **args)
        if sample_weight is not None:
            per_sample = per_sample * keras.ops.convert_to_tensor(sample_weight, "float32")
        total = total + loss_weight(spec, out) * keras.ops.mean(per_sample)
    return total


# -- the activation penalties, numpy float64 (the contract's table) ------------------------
def np_activation_term(clause: dict, a: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = a.shape[0]
    flat = a.reshape(b, -1)
    kind = clause["kind"]
    per_batch = np.sum if clause.get("reduction") == "sum" else np.mean
    if kind == "l1":
        return clause["rate"] * per_batch(np.abs(flat).sum(axis=1))
    if kind == "l2":
        return clause["rate"] * per_batch((flat ** 2).sum(axis=1))
    if kind == "l1_l2":
        return (clause["l1"] * per_batch(np.abs(flat).sum(axis=1))
                + clause["l2"] * per_batch((flat ** 2).sum(axis=1)))
    if kind == "mean_abs":
        return clause["rate"] * np.abs(flat).mean()
    if kind == "kl_sparsity":
        rho = clause["target"]
        total = 0.0
        for j in range(flat.shape[1]):
            q = min(max(flat[:, j].mean(), EPS), 1 - EPS)
            total += rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q))
        return clause["rate"] * total
    if kind == "decorrelation":
        if b == 1:
            return 0.0
        norms = [np.sqrt((row ** 2).sum()) + EPS for row in flat]
        cosines = [float(flat[i] @ flat[k]) / (norms[i] * norms[k])
                   for i in range(b) for k in range(b) if i != k]
        return clause["rate"] * float(np.mean(cosines))
    raise NotImplementedError(f"reference penalty kind {kind!r}")


def np_pair_term(clause: dict, s: np.ndarray, t: np.ndarray) -> float:
    """The README's pair penalties: s the first layer's output, t the second's."""
    s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
    rate, kind = clause["rate"], clause["kind"]
    if kind == "mse":
        return rate * float(((s - t) ** 2).mean())
    if kind == "distillation":
        temp = clause.get("temperature", 1.0)
        log_q, log_p = _np_log_softmax(s / temp), _np_log_softmax(t / temp)
        return rate * temp ** 2 * float((np.exp(log_p) * (log_p - log_q)).sum(axis=-1).mean())
    if kind == "cosine":
        s, t = s.reshape(len(s), -1), t.reshape(len(t), -1)
        cos = (s * t).sum(axis=1) / ((np.linalg.norm(s, axis=1) + EPS)
                                     * (np.linalg.norm(t, axis=1) + EPS))
        return rate * float((1.0 - cos).mean())
    raise NotImplementedError(f"reference pair kind {kind!r}")


def np_weight_term(clause: dict, weights: list[np.ndarray]) -> float:
    """Keras's regularizers: l1 = r·Σ|w|, l2 = r·Σw², l1_l2 both; summed over the variables;
    orthogonal = r·‖WᵀW − I‖²_F of each weight as a (rest, last axis) matrix."""
    total = 0.0
    for w in weights:
        w = np.asarray(w, np.float64)
        if clause["kind"] == "orthogonal":
            m = w.reshape(-1, w.shape[-1])
            total += clause["rate"] * float(((m.T @ m - np.eye(m.shape[1])) ** 2).sum())
        elif clause["kind"] == "l1":
            total += clause["rate"] * np.abs(w).sum()
        elif clause["kind"] == "l2":
            total += clause["rate"] * (w ** 2).sum()
        elif clause["kind"] == "l1_l2":
            total += clause["l1"] * np.abs(w).sum() + clause["l2"] * (w ** 2).sum()
        else:
            raise NotImplementedError(clause["kind"])
    return total


# -- the same in TensorFlow ops (for the gradient of the hand-written loss) ----------------
def tf_activation_term(clause: dict, a: Any) -> Any:
    import tensorflow as tf

    a = tf.cast(a, tf.float32)
    b = tf.shape(a)[0]
    flat = tf.reshape(a, (b, -1))
    kind = clause["kind"]
    per_batch = tf.reduce_sum if clause.get("reduction") == "sum" else tf.reduce_mean
    if kind == "l1":
        return clause["rate"] * per_batch(tf.reduce_sum(tf.abs(flat), axis=1))
    if kind == "l2":
        return clause["rate"] * per_batch(tf.reduce_sum(tf.square(flat), axis=1))
    if kind == "l1_l2":
        return (clause["l1"] * per_batch(tf.reduce_sum(tf.abs(flat), axis=1))
                + clause["l2"] * per_batch(tf.reduce_sum(tf.square(flat), axis=1)))
    if kind == "mean_abs":
        return clause["rate"] * tf.reduce_mean(tf.abs(flat))
    if kind == "kl_sparsity":
        rho = clause["target"]
        q = tf.clip_by_value(tf.reduce_mean(flat, axis=0), EPS, 1 - EPS)
        kl = rho * tf.math.log(rho / q) + (1 - rho) * tf.math.log((1 - rho) / (1 - q))
        return clause["rate"] * tf.reduce_sum(kl)
    if kind == "decorrelation":
        n = flat.shape[0]
        if n == 1:
            return tf.constant(0.0)
        unit = flat / (tf.norm(flat, axis=1, keepdims=True) + EPS)
        cos = tf.matmul(unit, unit, transpose_b=True)
        off = 1.0 - tf.eye(n)
        return clause["rate"] * tf.reduce_sum(cos * off) / float(n * (n - 1))
    raise NotImplementedError(f"reference penalty kind {kind!r}")


def tf_pair_term(clause: dict, s: Any, t: Any) -> Any:
    """keras.io's Distiller, MeanSquaredError and CosineSimilarity on the flattened samples;
    the second tensor held constant unless the clause says `stop_gradient: false`."""
    import keras
    import tensorflow as tf

    if clause.get("stop_gradient", True):
        t = tf.stop_gradient(t)
    rate, kind = clause["rate"], clause["kind"]
    if kind == "mse":
        return rate * keras.losses.MeanSquaredError()(t, s)
    if kind == "distillation":
        temp = clause.get("temperature", 1.0)
        return rate * temp ** 2 * keras.losses.KLDivergence()(
            tf.nn.softmax(t / temp, axis=-1), tf.nn.softmax(s / temp, axis=-1))
    if kind == "cosine":
        flat = lambda a: tf.reshape(a, (tf.shape(a)[0], -1))  # noqa: E731
        return rate * (1.0 + keras.losses.CosineSimilarity()(flat(t), flat(s)))
    raise NotImplementedError(f"reference pair kind {kind!r}")


def tf_weight_term(clause: dict, weights: list[Any]) -> Any:
    import tensorflow as tf

    total = 0.0
    for w in weights:
        w = tf.convert_to_tensor(w)
        if clause["kind"] == "orthogonal":
            m = tf.reshape(w, (-1, w.shape[-1]))
            total += clause["rate"] * tf.reduce_sum(
                tf.square(tf.matmul(m, m, transpose_a=True) - tf.eye(w.shape[-1])))
        elif clause["kind"] == "l1":
            total += clause["rate"] * tf.reduce_sum(tf.abs(w))
        elif clause["kind"] == "l2":
            total += clause["rate"] * tf.reduce_sum(tf.square(w))
        else:
            total += (clause["l1"] * tf.reduce_sum(tf.abs(w))
                      + clause["l2"] * tf.reduce_sum(tf.square(w)))
    return total


# -- the reference logs and step -------------------------------------------------------------
def _tensor_of(clause: dict, pre: dict, out: dict) -> Any:
    return (pre if clause.get("at", "output") == "pre_activation" else out)[clause["layer"]]


def reference_logs(spec: dict, hand: HandModel, x: dict, y: dict,
                   sample_weight: np.ndarray | None = None) -> dict[str, float]:
    """loss, task_loss and every clause's term, float64, from the hand model (training=False)."""
    pre, out = hand.numpy(x)
    logs = {"task_loss": np_task_loss(spec, y, out, sample_weight)}
    for clause in spec.get("penalties") or ():
        logs[clause["name"]] = np_activation_term(clause, _tensor_of(clause, pre, out))
    for clause in spec.get("pair_penalties") or ():
        s, t = clause["layers"]
        logs[clause["name"]] = np_pair_term(clause, out[s], out[t])
    for clause in spec.get("weight_penalties") or ():
        weights = [v.numpy() for v in weight_targets(spec, hand, clause)]
        logs[clause["name"]] = np_weight_term(clause, weights)
    logs["loss"] = sum(logs.values())
    return logs


def hand_sgd_step(spec: dict, hand: HandModel, x: dict, y: dict, lr: float,
                  sample_weight: np.ndarray | None = None) -> dict[str, Any]:
    """Post-step weights (by variable path) of one plain-SGD step on the hand-written loss
    (sample weights weight the task loss only)."""
    import tensorflow as tf

    variables = hand.model.trainable_weights
    with tf.GradientTape() as tape:
        pre, out = hand(x, training=True)
        total = tf_task_loss(spec, y, out, sample_weight)
        for clause in spec.get("penalties") or ():
            total += tf_activation_term(clause, _tensor_of(clause, pre, out))
        for clause in spec.get("pair_penalties") or ():
            s, t = clause["layers"]
            total += tf_pair_term(clause, out[s], out[t])
        for clause in spec.get("weight_penalties") or ():
            total += tf_weight_term(clause, weight_targets(spec, hand, clause))
    grads = tape.gradient(total, variables)
    assert all(g is not None for g in grads), [v.path for v, g in zip(variables, grads) if g is None]
    return {v.path: v.numpy() - lr * tf.convert_to_tensor(g).numpy()   # Embedding:
            for v, g in zip(variables, grads)}                                   # IndexedSlices


def copy_weights(source, target) -> None:
    """Weights, and the dropout seed-generator states, matched by layer name."""
    for layer in source.layers:
        gen = getattr(layer, "seed_generator", None)
        if not layer.weights and gen is None:
            continue               # inputs, taps, activations: nothing to copy
        target.get_layer(layer.name).set_weights(layer.get_weights())
        if gen is not None:
            # a copy: on JAX a step donates (deletes) the source model's state array
            target.get_layer(layer.name).seed_generator.state.assign(gen.state.numpy())


def perturb_zero_weights(model, seed: int = 0) -> None:
    """Give all-zero variables (biases) small random values, so every term and path counts."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_weights:
        value = v.numpy()
        if not value.any():
            v.assign(rng.normal(scale=0.1, size=value.shape).astype(value.dtype))


def weights_by_path(model: Any) -> dict[str, np.ndarray]:
    return {v.path: v.numpy() for v in model.trainable_weights}


def weights_hash(model: Any) -> str:
    """Weights (paths and values) and every other variable's value (dropout seed states)."""
    h = hashlib.sha256()
    for v in model.weights:
        h.update(v.path.encode())
    for v in model.variables:
        h.update(np.ascontiguousarray(v.numpy()).tobytes())
    return h.hexdigest()


# -- the strategies' promise (README): a float32 ulp bound ----------------------------------
#: The README's promise across strategies: for the same weights and batch, the total and every
#: term within MAX_ULPS float32 ulps; after training (gradients agree to round-off), weights
#: within rtol 1e-6 + atol 1e-7 and every logged value within a relative 1e-6.
MAX_ULPS = 2
AFTER_TRAINING_RTOL = 1e-6


def float32_ulps(a: float, b: float) -> int:
    """How many float32 values apart a and b are (0: the same value; +0 and -0 are one)."""
    pair = np.array([a, b], dtype=np.float32)
    assert np.array_equal(pair.astype(np.float64), np.array([a, b], dtype=np.float64)), \
        f"{a!r}, {b!r}: not float32 values"
    bits = pair.view(np.int32).astype(np.int64)
    ordered = np.where(bits < 0, -(2**31) - bits, bits)         # monotonic in the value
    return int(abs(ordered[0] - ordered[1]))


def assert_within_ulps(got: dict, expected: dict, what: str) -> None:
    assert got.keys() == expected.keys(), what
    far = {k: float32_ulps(got[k], expected[k]) for k in expected}
    assert max(far.values()) <= MAX_ULPS, f"{what}: ulps apart {far}"
