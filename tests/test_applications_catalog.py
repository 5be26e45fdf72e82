"""The layer catalog against every layer class and argument `keras.applications` uses.

tests/golden/applications_inventory.json (written by tests/benchmarks/applications_inventory.py
from the installed Keras) lists, per architecture, each layer class with every value each of
its config arguments takes. The tests here read it and validate those values against the
catalog (`specc.spec.layers.LAYER_TYPES`, format 2) without building any model; one test
rebuilds two small architectures to check that the file is current.

    python tests/test_applications_catalog.py     # the report: per architecture, and coverage

A config becomes spec arguments the way a spec author writes them:
  - keys the catalog leaves out on purpose (`LEFT_OUT`) are dropped when they hold the value
    that means "not used"; any other value stays, and the catalog refuses it (a reported gap);
  - Keras's serialized objects `{"module", "class_name": "VarianceScaling", "config": {...}}`
    become `{type: VarianceScaling, ...}`; a dtype policy becomes its name.
Nested models (ConvNeXt's `Sequential` stem) are written as their layers; raw `keras.ops`
calls between layers are written as the catalog layer that computes the same (`OPERATIONS`).
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Callable, Final, get_args

import pytest
from pydantic import ValidationError

from specc.spec.layers import LAYER_TYPES

ROOT: Final = Path(__file__).resolve().parents[1]
INVENTORY: Final = ROOT / "tests" / "golden" / "applications_inventory.json"
SCRIPT: Final = ROOT / "tests" / "benchmarks" / "applications_inventory.py"


def _none(value: Any) -> bool:
    return value is None


#: Config keys the catalog leaves out on purpose -> (the value that means "not used", why).
#: A key holding any other value stays in the arguments, and the catalog refuses it.
LEFT_OUT: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "name": (lambda v: True, "a spec names every layer itself"),
    "trainable": (lambda v: v is True, "true is the default; layers with weights accept "
                                       "`trainable: false`, weightless layers have nothing "
                                       "to freeze"),
    "dtype": (lambda v: _policy(v) == "float32",
              "the global float32 policy; any other policy is written by its name"),
    **{key: (_none, "regularizers are penalty clauses (`weight_penalties`, `penalties`), "
                    "never layer arguments") for key in (
        "kernel_regularizer", "bias_regularizer", "activity_regularizer",
        "depthwise_regularizer", "pointwise_regularizer", "beta_regularizer",
        "gamma_regularizer", "recurrent_regularizer", "embeddings_regularizer")},
    "quantization_config": (_none, "Keras's post-training quantization, not a model's "
                                   "architecture"),
    "rms_scaling": (lambda v: v is False, "LayerNormalization's deprecated flag (a **kwargs "
                                          "key in Keras 3.15, not in its signature; "
                                          "RMSNormalization replaces it)"),
}
#: Arguments whose null means "set later, by adapt() or by loading weights" -> the class,
#: reported as adapted, not as a catalog gap. None now: a Normalization without mean and
#: variance holds them as weights in a spec too (a weights file fills them).
ADAPTED: Final[dict[str, tuple[str, ...]]] = {}
#: Keys of serialized initializers and constraints the catalog leaves out, same convention.
OBJECT_LEFT_OUT: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "input_axes": (_none, "Keras 3.15's fan axes for sharded kernels; null: the usual fans"),
    "output_axes": (_none, "Keras 3.15's fan axes for sharded kernels; null: the usual fans"),
}
#: Raw `keras.ops` calls between layers -> the catalog layer a spec writes instead.
OPERATIONS: Final[dict[str, Callable[[list[Any]], dict[str, Any]]]] = {
    "Add(tensor, tensor)": lambda c: {"type": "Add"},
    "Multiply(tensor, tensor)": lambda c: {"type": "Multiply"},
    "Add(tensor, const)": lambda c: {"type": "Rescaling", "scale": 1.0, "offset": c[0]},
    "Multiply(tensor, const)": lambda c: {"type": "Rescaling", "scale": c[0]},
}
#: Kinds of problem that leave an architecture uncovered (besides "adapted").
GAPS: Final = ("missing", "custom", "refused", "operations")
#: Layer classes of `keras.applications` itself, not `keras.layers`: custom layers (issue 12).
CUSTOM_MODULE: Final = "keras.src.applications."


def _policy(value: Any) -> Any:
    if isinstance(value, dict) and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        return value.get("config", {}).get("name")
    return value


def to_spec(value: Any) -> Any:
    """A Keras config value as a spec author writes it: serialized objects as `{type: ...}`."""
    if isinstance(value, dict) and {"class_name", "config"} <= set(value):
        if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy"):
            return _policy(value)
        config = {k: to_spec(v) for k, v in value["config"].items()
                  if not (k in OBJECT_LEFT_OUT and OBJECT_LEFT_OUT[k][0](v))}
        return {"type": value.get("registered_name") or value["class_name"], **config}
    if isinstance(value, dict):
        return {k: to_spec(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_spec(v) for v in value]
    return value


def arguments(values: dict[str, Any]) -> dict[str, Any]:
    """One config's worth of spec arguments: every key's first value, LEFT_OUT keys dropped."""
    return {k: to_spec(v[0]) for k, v in values.items()
            if not (k in LEFT_OUT and LEFT_OUT[k][0](v[0]))}


def refusals(type_: str, config: dict[str, Any]) -> list[tuple[str, str]]:
    """(argument, message) for each argument the catalog refuses in this config."""
    try:
        LAYER_TYPES[type_].model_validate({"name": "x", "type": type_, **config},
                                          context={"format": 2})
    except ValidationError as exc:
        return [(str(e["loc"][0]) if e["loc"] else "", e["msg"]) for e in exc.errors()]
    return []


def adapted(type_: str, values: dict[str, list[Any]]) -> list[str]:
    """The statistics arguments this class leaves to adapt() or loaded weights (null)."""
    return [arg for arg in ADAPTED.get(type_, ()) if None in values.get(arg, [])]


def check_layer(type_: str, values: dict[str, list[Any]]) -> list[str]:
    """Every value of every argument, each in a config of the class's other first values.

    The statistics of an adapted layer count as written (0 and 1): `report` lists it apart.
    """
    values = {k: ([v for v in vs if v is not None] or [0.0 if k == "mean" else 1.0])
                 if k in adapted(type_, values) else vs for k, vs in values.items()}
    base = arguments(values)
    found: dict[tuple[str, str], dict[str, None]] = {}
    configs = [base] + [
        {**base, arg: to_spec(v)} for arg, vs in values.items() for v in vs[1:]
        if not (arg in LEFT_OUT and LEFT_OUT[arg][0](v))]
    for config in configs:
        for arg, msg in refusals(type_, config):
            shown = json.dumps(config.get(arg), separators=(",", ":"))
            found.setdefault((arg, shown), {})[msg] = None
    return [f"{type_}.{arg} = {shown[:120]}: {'; '.join(msgs)}"
            for (arg, shown), msgs in sorted(found.items())]


def _operation_layer(key: str) -> tuple[str, dict[str, Any]] | None:
    """`Add(tensor, 3.0)` -> ("Add(tensor, const)", the layer a spec writes), or None."""
    name, _, rest = key.partition("(")
    operands = [a.strip() for a in rest.removesuffix(")").split(",")]
    try:
        consts = [float(a) for a in operands if a != "tensor"]
    except ValueError:
        return None                  # a keyword or a non-number: no catalog layer stands for it
    pattern = f"{name}({', '.join('tensor' if a == 'tensor' else 'const' for a in operands)})"
    make = OPERATIONS.get(pattern)
    return None if make is None else (pattern, make(consts))


def report(arch: dict[str, Any]) -> dict[str, list[str]]:
    """One architecture against the catalog, by kind of problem (empty lists: all covered).

    missing: plain `keras.layers` classes the catalog lacks; custom: classes defined by
    `keras.applications` itself (custom layers, issue 12); refused: argument values the
    catalog refuses; operations: raw `keras.ops` calls no catalog layer stands for;
    adapted: layers whose statistics adapt() or loaded weights set (`ADAPTED`);
    rewritten: what a spec writes differently (nested models, operations), for the record.
    """
    out: dict[str, list[str]] = {kind: [] for kind in (*GAPS, "adapted", "rewritten")}
    for type_, entry in arch["layers"].items():
        if type_ not in LAYER_TYPES:
            kind = "custom" if entry["module"].startswith(CUSTOM_MODULE) else "missing"
            out[kind].append(f"{type_} ({entry['module']}, {entry['count']}x)")
            continue
        if adapted(type_, entry["values"]):
            out["adapted"].append(f"{type_} ({entry['count']}x): "
                                  f"{', '.join(adapted(type_, entry['values']))} null")
        out["refused"] += check_layer(type_, entry["values"])
    for container, n in arch["containers"].items():
        out["rewritten"].append(f"{n}x nested {container}: written as its layers")
    for key, n in arch["operations"].items():
        found = _operation_layer(key)
        if found is None:
            out["operations"].append(f"{key} ({n}x)")
            continue
        layer = found[1]
        problems = refusals(layer["type"], {k: v for k, v in layer.items() if k != "type"})
        if problems:
            out["operations"].append(f"{key} as {layer}: {problems}")
        else:
            out["rewritten"].append(f"{n}x keras.ops {key}: written as {layer}")
    return out


def covered(problems: dict[str, list[str]], *, written_statistics: bool = False) -> bool:
    """No gap; with written_statistics, an adapted layer counts as one that states them."""
    kinds = GAPS if written_statistics else (*GAPS, "adapted")
    return not any(problems[k] for k in kinds)


def load_inventory() -> dict[str, Any]:
    return json.loads(INVENTORY.read_text(encoding="utf-8"))


# --- what remains, and why ------------------------------------------------------------------

def problem_keys(problems: dict[str, list[str]]) -> list[str]:
    """`kind: Class` or `kind: Class.argument` for each gap and adapted layer, sorted."""
    return sorted({f"{kind}: {line.split(' ')[0]}" for kind in (*GAPS, "adapted")
                   for line in problems[kind]})


_CONVNEXT: Final = ["custom: LayerScale"]
#: Architectures that are not covered, with what keeps them out: a new gap fails the test,
#: and so does a closed one (update this table then).
#: - ConvNeXt's LayerScale multiplies by a learned per-channel vector (init 1e-6): no
#:   catalog layer has that weight; it is a custom layer (issue 12).
#: - InceptionResNetV2's CustomScaleLayer computes a + scale * b; a spec writes it as
#:   Rescaling(scale) on b and Add, the same function with no weights, but not one layer.
#: - EfficientNet B0-B7 start with a Normalization whose mean and variance are null (set by
#:   the ImageNet weights): a spec writes it so too, its statistics weights (no gap).
EXPECTED: Final[dict[str, list[str]]] = {
    **{f"ConvNeXt{size}": _CONVNEXT for size in ("Tiny", "Small", "Base", "Large", "XLarge")},
    "InceptionResNetV2": ["custom: CustomScaleLayer"],
}


# --- the tests (no Keras) ---------------------------------------------------------------------

INV = load_inventory()


@pytest.mark.parametrize("name", sorted(INV["architectures"]))
def test_architecture_against_catalog(name: str) -> None:
    problems = report(INV["architectures"][name])
    lines = [f"{k}: {line}" for k in (*GAPS, "adapted") for line in problems[k]]
    assert problem_keys(problems) == sorted(EXPECTED.get(name, [])), "\n".join(lines)


def test_conversion_of_serialized_objects() -> None:
    init = {"module": "keras.initializers", "class_name": "VarianceScaling",
            "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal",
                       "seed": None, "input_axes": None, "output_axes": None},
            "registered_name": None}
    assert to_spec(init) == {"type": "VarianceScaling", "scale": 2.0, "mode": "fan_out",
                             "distribution": "truncated_normal", "seed": None}
    policy = {"module": "keras", "class_name": "DTypePolicy",
              "config": {"name": "mixed_float16"}, "registered_name": None}
    assert to_spec(policy) == "mixed_float16"
    assert arguments({"dtype": [dict(policy, config={"name": "float32"})], "trainable": [True],
                      "kernel_regularizer": [None], "units": [3]}) == {"units": 3}
    # A value that means "used" stays, and the catalog refuses it.
    assert check_layer("Dense", {"units": [3], "kernel_regularizer": [{"class_name": "L2",
                                                                       "config": {}}]})
    assert _operation_layer("Add(tensor, 3.0)") == (
        "Add(tensor, const)", {"type": "Rescaling", "scale": 1.0, "offset": 3.0})


def test_a_refused_value_is_reported_with_its_argument() -> None:
    lines = check_layer("Dense", {"units": [4, 0], "use_bias": [True]})
    assert lines == ["Dense.units = 0: Input should be greater than 0"]


# --- the inventory is current (Keras) ---------------------------------------------------------

def _script() -> Any:
    spec = importlib.util.spec_from_file_location("applications_inventory", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inventory_is_current() -> None:
    """Two small architectures rebuilt from the installed Keras give the committed entries."""
    keras = pytest.importorskip("keras")
    if keras.__version__ != INV["keras"]:
        pytest.skip(f"inventory written with Keras {INV['keras']}, this is {keras.__version__}: "
                    f"run {INV['generated_by']}")
    script = _script()
    assert set(script.architectures()) | set(script.VARIANTS) == set(INV["architectures"]), (
        f"run {INV['generated_by']}")
    for name in ("MobileNetV3Small", "ResNet50"):
        assert script.inventory(name) == INV["architectures"][name], (
            f"{name} changed: run {INV['generated_by']} and read the diff")


def test_closed_gaps_build_in_keras() -> None:
    """Arguments added for keras.applications reach Keras as written (renorm_clipping)."""
    keras = pytest.importorskip("keras")
    import numpy as np

    config = {"renorm": True, "renorm_clipping": {"rmax": 3.0, "rmin": 0.5, "dmax": 5.0}}
    layer = LAYER_TYPES["BatchNormalization"].model_validate(
        {"name": "bn", "type": "BatchNormalization", **config})
    built = keras.layers.BatchNormalization(**layer.keras_kwargs())
    assert built.get_config()["renorm_clipping"] == config["renorm_clipping"]
    assert built(np.ones((4, 3), "float32"), training=True).shape == (4, 3)


#: Keras activations by name that the catalog leaves out, and why.
ACTIVATIONS_LEFT_OUT: Final = {"glu": "halves the last axis (activations keep the shape)",
                               "threshold": "needs its threshold and default_value"}


def test_activation_words_are_keras_activations() -> None:
    """Every Keras activation name is a catalog word, or left out with a reason; each word
    keeps its input's shape (the static shape rules assume so)."""
    keras = pytest.importorskip("keras")
    import numpy as np
    from keras.src.activations import ALL_OBJECTS_DICT

    from specc.spec.base import Activation

    words = set(get_args(Activation))
    assert words | set(ACTIVATIONS_LEFT_OUT) == set(ALL_OBJECTS_DICT)
    x = np.linspace(-3.0, 3.0, 12, dtype="float32").reshape(2, 6)
    for word in sorted(words):
        assert keras.layers.Activation(word)(x).shape == x.shape, word


# --- the report -------------------------------------------------------------------------------

def coverage() -> list[str]:
    """The coverage lines: architectures (default options), then the option variants."""
    out = []
    for label, names in (("architectures", [n for n in INV["architectures"] if "(" not in n]),
                         ("option variants", [n for n in INV["architectures"] if "(" in n])):
        problems = [report(INV["architectures"][n]) for n in names]
        strict = sum(covered(p) for p in problems)
        written = sum(covered(p, written_statistics=True) for p in problems)
        out.append(f"{strict} of {len(names)} {label} (keras.applications, Keras {INV['keras']})"
                   f" have every layer class and argument in the catalog; {written} of "
                   f"{len(names)} when an adapted Normalization's statistics are written")
    return out


def main() -> int:
    for name, arch in INV["architectures"].items():
        problems = report(arch)
        print(f"{name}: {'covered' if covered(problems) else 'NOT covered'}")
        for kind, lines in problems.items():
            for line in lines:
                print(f"  {kind}: {line}")
    print("", *coverage(), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
