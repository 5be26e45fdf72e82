"""The layer catalog: strict validation without Keras, and honesty against the real Keras."""
from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined

from specc.spec.base import LayerSpec
from specc.spec.layers import LAYER_TYPES, MAX_MERGE_INPUTS, AnyLayer, Bidirectional

ANY_LAYER: TypeAdapter[Any] = TypeAdapter(AnyLayer)

#: The layers the README ("The spec format", "Layers:") promises to validate.
CONTRACT_LAYERS = """
    Dense Conv1D Conv2D Conv3D Conv2DTranspose SeparableConv2D DepthwiseConv2D
    MaxPooling1D MaxPooling2D MaxPooling3D AveragePooling1D AveragePooling2D AveragePooling3D
    GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GlobalAveragePooling1D
    GlobalAveragePooling2D GlobalAveragePooling3D Flatten Reshape Permute RepeatVector Dropout
    SpatialDropout1D SpatialDropout2D BatchNormalization LayerNormalization Activation Embedding
    SimpleRNN LSTM GRU Bidirectional MultiHeadAttention Add Subtract Multiply Average Maximum
    Minimum Concatenate Rescaling ZeroPadding2D UpSampling2D
""".split()

#: The smallest valid arguments of every layer that has required ones.
REQUIRED: dict[str, dict[str, Any]] = {
    "Dense": {"units": 4}, "Embedding": {"input_dim": 10, "output_dim": 4},
    "Activation": {"activation": "relu"}, "Reshape": {"target_shape": [2, -1]},
    "Permute": {"dims": [2, 1]}, "RepeatVector": {"n": 3}, "Rescaling": {"scale": 0.5},
    **{t: {"filters": 4, "kernel_size": 3} for t in (
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "SeparableConv1D", "SeparableConv2D")},
    "DepthwiseConv1D": {"kernel_size": 3}, "DepthwiseConv2D": {"kernel_size": 3},
    **{f"AveragePooling{d}D": {"pool_size": 2} for d in (1, 2, 3)},
    **{t: {"rate": 0.5} for t in (
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout")},
    "GaussianNoise": {"stddev": 0.1},
    "SimpleRNN": {"units": 4}, "LSTM": {"units": 4}, "GRU": {"units": 4},
    "Bidirectional": {"layer": {"type": "LSTM", "units": 4}},
    "MultiHeadAttention": {"num_heads": 2, "key_dim": 8}, "Dot": {"axes": 1},
}

NOT_KERAS_ARGS = {"name", "type", "from_", "call"}
#: Optional in Keras, required here (none now: Normalization's mean and variance may be left
#: out, as Keras allows; its statistics then come from a weights file).
REQUIRED_HERE: set[str] = set()


def spec(type_: str, **args: Any) -> LayerSpec:
    return ANY_LAYER.validate_python({"name": "x", "type": type_, **args})


def errors(type_: str, **args: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        spec(type_, **args)
    return [(e["loc"], e["type"]) for e in info.value.errors()]


def as_lists(value: Any) -> Any:
    """Keras writes sizes as tuples; the spec language has only lists."""
    return [as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


# --- the catalog itself (no keras) ----------------------------------------------------------

def test_catalog_covers_the_contract() -> None:
    assert set(CONTRACT_LAYERS) <= set(LAYER_TYPES)
    assert all(cls.__name__ == name for name, cls in LAYER_TYPES.items())


def test_every_argument_is_documented() -> None:
    for cls in LAYER_TYPES.values():
        for field, info in cls.model_fields.items():
            assert field == "type" or info.description, f"{cls.__name__}.{field}"


def test_json_schema_generates() -> None:
    schema = ANY_LAYER.json_schema(by_alias=True)
    assert set(schema["discriminator"]["mapping"]) == set(LAYER_TYPES)


def test_required_arguments_are_known() -> None:
    for name, cls in LAYER_TYPES.items():
        required = {f for f, i in cls.model_fields.items() if i.is_required()} - {"name", "type"}
        assert required == set(REQUIRED.get(name, {})), name


def test_metadata() -> None:
    splittable = {n for n, c in LAYER_TYPES.items() if c.splittable_activation}
    assert splittable == {"Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose",
                          "Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D",
                          "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D"}
    for name in ("Add", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"):
        assert (LAYER_TYPES[name].min_inputs, LAYER_TYPES[name].max_inputs) == (
            2, MAX_MERGE_INPUTS)
    assert (LAYER_TYPES["Subtract"].min_inputs, LAYER_TYPES["Subtract"].max_inputs) == (2, 2)
    mha = LAYER_TYPES["MultiHeadAttention"]
    assert (mha.min_inputs, mha.max_inputs) == (1, 3)
    assert (LAYER_TYPES["Dense"].min_inputs, LAYER_TYPES["Dense"].max_inputs) == (1, 1)
    assert LAYER_TYPES["LSTM"].weight_args["kernel"] == ("kernel_regularizer",
                                                          "recurrent_regularizer")
    assert spec("Dense", units=2, use_bias=False).weight_kinds() == {"kernel"}
    assert spec("BatchNormalization", scale=False).weight_kinds() == {"bias"}


def test_strings_are_not_ints() -> None:
    assert errors("Dense", units="64") == [(("Dense", "units"), "int_type")]


def test_bools_are_strict() -> None:
    assert errors("Dense", units=True) == [(("Dense", "units"), "int_type")]
    assert errors("Dense", units=2, use_bias=1) == [(("Dense", "use_bias"), "bool_type")]
    assert errors("Dropout", rate=False) == [(("Dropout", "rate"), "float_type")]


def test_unknown_argument_is_rejected() -> None:
    assert errors("Dense", units=2, unitz=3) == [(("Dense", "unitz"), "extra_forbidden")]
    # Regularizers are penalty clauses, never constructor arguments in a spec.
    assert errors("Dense", units=2, kernel_regularizer="l2") == [
        (("Dense", "kernel_regularizer"), "extra_forbidden")]


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_rate_out_of_range(rate: float) -> None:
    assert [loc for loc, _ in errors("Dropout", rate=rate)] == [("Dropout", "rate")]


def test_ints_are_accepted_for_floats() -> None:
    assert spec("Dropout", rate=0).keras_kwargs() == {"rate": 0.0}
    assert spec("Rescaling", scale=2, offset=-1).keras_kwargs() == {"scale": 2.0, "offset": -1.0}
    assert spec("BatchNormalization", momentum=1).keras_kwargs() == {"momentum": 1.0}


def test_sizes_per_axis() -> None:
    assert spec("Conv2D", filters=2, kernel_size=[3, 5]).keras_kwargs()["kernel_size"] == [3, 5]
    assert errors("Conv2D", filters=2, kernel_size=[3, 3, 3])
    assert errors("Conv2D", filters=2, kernel_size=0)
    assert errors("Conv2D", filters=2, kernel_size=(3, 3))  # strict: a tuple is not a list
    assert spec("ZeroPadding2D", padding=[[1, 0], 2]).keras_kwargs() == {"padding": [[1, 0], 2]}
    assert errors("MaxPooling1D", padding="causal")
    assert spec("Conv1D", filters=2, kernel_size=3, padding="causal")


def test_shape_arguments() -> None:
    assert errors("Reshape", target_shape=[-1, -1])
    assert errors("Reshape", target_shape=[0, 4])
    assert errors("Permute", dims=[1, 3])
    assert errors("Permute", dims=[0, 1])


def test_only_known_values() -> None:
    assert errors("Dense", units=2, activation="relux") == [
        (("Dense", "activation"), "literal_error")]
    assert errors("Dense", units=2, kernel_initializer="he") == [
        (("Dense", "kernel_initializer", "name"), "literal_error")]
    assert errors("Dense", units=2, kernel_initializer={"type": "He"}) == [
        (("Dense", "kernel_initializer", "object"), "union_tag_invalid")]
    assert errors("Dense", units=2, kernel_constraint={"type": "MaxNorm", "max_value": -1.0}) \
        == [(("Dense", "kernel_constraint", "object", "MaxNorm", "max_value"), "greater_than")]
    assert [t for _, t in errors("Denze", units=2)] == ["union_tag_invalid"]


def test_bidirectional_nests_a_recurrent_layer_without_name() -> None:
    bi = spec("Bidirectional", layer={"type": "GRU", "units": 3, "use_bias": False},
              merge_mode=None)
    assert isinstance(bi, Bidirectional)
    assert bi.keras_kwargs() == {"merge_mode": None}
    assert bi.layer.keras_kwargs() == {"units": 3, "use_bias": False}
    assert bi.weight_kinds() == {"kernel"}
    assert errors("Bidirectional", layer={"type": "LSTM", "units": 3, "name": "f"}) == [
        (("Bidirectional", "layer", "LSTM", "name"), "extra_forbidden")]
    assert [t for _, t in errors("Bidirectional", layer={"type": "Dense", "units": 3})] == [
        "union_tag_invalid"]


# --- honesty against Keras --------------------------------------------------------------------

def test_catalog_matches_keras_signatures(keras: Any) -> None:
    common = inspect.signature(keras.layers.Layer.__init__).parameters
    problems = []
    for name, cls in LAYER_TYPES.items():
        keras_cls = getattr(keras.layers, name, None)
        if keras_cls is None:
            problems.append(f"{name}: no such Keras layer")
            continue
        params = inspect.signature(keras_cls.__init__).parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for field, info in cls.model_fields.items():
            if field in NOT_KERAS_ARGS:
                continue
            param = params.get(field) or (common.get(field) if var_kw else None)
            if param is None:
                problems.append(f"{name}.{field}: not a Keras argument")
            elif info.is_required() != (param.default is param.empty) and \
                    f"{name}.{field}" not in REQUIRED_HERE:
                problems.append(f"{name}.{field}: required here iff required in Keras")
            elif info.default is not PydanticUndefined and (
                    as_lists(info.default) != as_lists(param.default)):
                problems.append(f"{name}.{field}: default {info.default!r} "
                                f"!= Keras {param.default!r}")
        for kind, args in cls.weight_args.items():
            target = params
            if cls is Bidirectional:  # the regularizers go to the nested recurrent layer
                target = inspect.signature(keras.layers.LSTM.__init__).parameters
            problems += [f"{name}.weight_args[{kind}]: no argument {a}"
                         for a in args if a not in target]
    assert not problems, "\n".join(problems)


def build(keras: Any, layer: LayerSpec) -> Any:
    """What the runtime does: the spec's arguments, its name, nested layers built first."""
    if isinstance(layer, Bidirectional):
        inner = getattr(keras.layers, layer.layer.type)(**layer.layer.keras_kwargs(),
                                                        name=f"{layer.name}_inner")
        return keras.layers.Bidirectional(inner, **layer.keras_kwargs(), name=layer.name)
    return getattr(keras.layers, layer.type)(**layer.keras_kwargs(), name=layer.name)


def test_keras_builds_every_minimal_spec(keras: Any) -> None:
    for name in LAYER_TYPES:
        layer = build(keras, spec(name, **REQUIRED.get(name, {})))
        assert layer.name == "x" and type(layer).__name__ == name


def test_keras_accepts_every_default_written_out(keras: Any) -> None:
    """The documented defaults are valid spec values and valid Keras values (lists too)."""
    for name, cls in LAYER_TYPES.items():
        defaults = {f: i.default for f, i in cls.model_fields.items()
                    if not i.is_required() and f not in NOT_KERAS_ARGS}
        layer = spec(name, **REQUIRED.get(name, {}), **defaults)
        assert set(layer.keras_kwargs()) == (set(REQUIRED.get(name, {})) | set(defaults)) - {
            "layer"}
        build(keras, layer)


def test_keras_runs_list_valued_arguments(keras: Any) -> None:
    import numpy as np

    cases = [
        ("Conv2D", {"filters": 2, "kernel_size": [3, 1], "strides": [2, 1]}, (1, 8, 8, 1)),
        ("ZeroPadding2D", {"padding": [[1, 0], 2]}, (1, 4, 4, 1)),
        ("Cropping2D", {"cropping": [1, [0, 1]]}, (1, 4, 4, 1)),
        ("Reshape", {"target_shape": [2, -1]}, (1, 4, 4)),
        ("Permute", {"dims": [2, 1]}, (1, 3, 5)),
        ("Dropout", {"rate": 0.5, "noise_shape": [None, 1, 4]}, (2, 3, 4)),
        ("MaxPooling2D", {"pool_size": [2, 1], "strides": [2, 1]}, (1, 4, 4, 1)),
    ]
    for name, args, shape in cases:
        layer = build(keras, spec(name, **args))
        out = layer(np.ones(shape, "float32"), training=True)
        assert tuple(out.shape) == layer.compute_output_shape(shape), name
