"""Folding by structure on plain data (no Keras): specc.importer.fold on flat specs written
here by hand, the expected folded form written out too."""
from __future__ import annotations

from typing import Any

from specc.importer.fold import fold
from specc.importer.repeats import is_auto, local_names, snake


def _flat(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"specc": 1, "name": "m", "inputs": {"features": {"shape": [4]}},
            "layers": layers, "outputs": [layers[-1]["name"]], "loss": "mean_squared_error"}


def _residual_stack(rates: list[float], leak: bool = False) -> list[dict[str, Any]]:
    """A stem, then one unit per rate: Dense relu, Dropout, Dense, Add with the unit's input;
    automatic names as Keras gives them. `leak`: a last layer also reads the second unit's
    inner Dropout."""
    layers: list[dict[str, Any]] = [{"name": "dense", "type": "Dense", "units": 8}]
    previous, n = "dense", 0
    for j, rate in enumerate(rates):
        suffix = "" if j == 0 else f"_{j}"
        layers += [
            {"name": f"dense_{n + 1}", "type": "Dense", "units": 8, "activation": "relu"},
            {"name": f"dropout{suffix}", "type": "Dropout", "rate": rate},
            {"name": f"dense_{n + 2}", "type": "Dense", "units": 8},
            {"name": f"add{suffix}", "type": "Add", "from": [previous, f"dense_{n + 2}"]}]
        previous, n = f"add{suffix}", n + 2
    if leak:
        layers.append({"name": "concatenate", "type": "Concatenate",
                       "from": [previous, "dropout_1"]})
    layers.append({"name": "head", "type": "Dense", "units": 1})
    return layers


def test_a_chain_of_same_shaped_units_is_one_repeat() -> None:
    data = _flat(_residual_stack([0.1, 0.2, 0.3, 0.4]))
    folded, rename = fold(data, {})
    assert folded["blocks"] == {"dense_block": {
        "params": {"rate": "float"},
        "layers": [
            {"name": "dense", "type": "Dense", "units": 8, "activation": "relu"},
            {"name": "dropout", "type": "Dropout", "rate": "${rate}"},
            {"name": "dense_1", "type": "Dense", "units": 8},
            {"name": "add", "type": "Add", "from": ["x", "dense_1"]}]}}
    assert folded["layers"] == [
        {"name": "dense", "type": "Dense", "units": 8},
        {"name": "dense_block", "use": "dense_block", "repeat": 4,
         "with": {"rate": "${[0.1, 0.2, 0.3, 0.4][i]}"}},
        {"name": "head", "type": "Dense", "units": 1}]
    assert rename["dense_6"] == "dense_block3.dense_1"
    assert rename["add_3"] == "dense_block4.add"


def test_a_unit_read_from_outside_in_its_middle_is_not_an_instance() -> None:
    data = _flat(_residual_stack([0.1, 0.2, 0.3, 0.4, 0.5], leak=True))
    folded, rename = fold(data, {})
    names = [e["name"] for e in folded["layers"]]
    assert "dropout_1" in names and "dropout_1" not in rename    # the second unit stays flat
    uses = [(e["name"], e.get("repeat", 1)) for e in folded["layers"] if "use" in e]
    assert uses == [("dense_block_1", 1), ("dense_block_2_", 3)]     # units 1 and 3 to 5


def test_nothing_repeated_gives_nothing() -> None:
    layers = [{"name": "dense", "type": "Dense", "units": 8},
              {"name": "dropout", "type": "Dropout", "rate": 0.5},
              {"name": "head", "type": "Dense", "units": 1}]
    assert fold(_flat(layers), {}) is None


def test_local_names() -> None:
    assert snake("SeparableConv2D") == "separable_conv2d"
    assert snake("Conv2DTranspose") == "conv2d_transpose"
    assert is_auto("conv2d_7", "Conv2D") and not is_auto("stem", "Conv2D")
    auto = [[{"name": "activation_3", "type": "Activation"}, {"name": "conv2d_4", "type": "Conv2D"},
             {"name": "activation_4", "type": "Activation"}],
            [{"name": "activation_5", "type": "Activation"}, {"name": "conv2d_5", "type": "Conv2D"},
             {"name": "activation_6", "type": "Activation"}]]
    assert local_names(auto) == ["activation", "conv2d", "activation_1"]
    given = [[{"name": "block2_sepconv1_act", "type": "Activation"},
              {"name": "a_x", "type": "Dense"}],
             [{"name": "block3_sepconv2_act", "type": "Activation"},
              {"name": "b_x", "type": "Dense"}]]
    assert local_names(given) == ["block_sepconv_act", "x_"]     # `x` is the block's input
