"""The one-file plugin tests/plugins/keras_hub_layers.py (keras-hub's transformer layers as
specc types) without keras-hub or Keras: a spec `specc import` writes of DistilBERT validates
with it, its shapes and parameter count follow, its masks go through `call:`, and mistakes are
located errors (the fast tier's check that no test imports Keras covers this module).
tests/benchmarks/import_keras_hub.py imports and rebuilds the backbones with keras-hub."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

import pytest

import specc
from specc.budget import measure_spec
from specc.errors import SpecError

ROOT: Final = Path(__file__).resolve().parents[1]
TYPES: Final = ("ReversibleEmbedding", "PositionEmbedding", "TokenAndPositionEmbedding",
                "TransformerEncoder", "TransformerDecoder")

#: What `specc import --plugin keras_hub_layers.py` writes for keras_hub.models.DistilBertBackbone(
#: vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
#: max_sequence_length=16).
DISTILBERT: Final = """\
specc: 2
name: distil_bert_backbone
inputs:
  padding_mask: {shape: [null], dtype: int32}
  token_ids: {shape: [null], dtype: int32}
layers:
  - {name: token_and_position_embedding, type: TokenAndPositionEmbedding, from: token_ids, vocabulary_size: 50, sequence_length: 16, embedding_dim: 8, embeddings_initializer: {type: TruncatedNormal, stddev: 0.02}}
  - {name: embeddings_layer_norm, type: LayerNormalization, epsilon: 1.0e-12}
  - {name: embeddings_dropout, type: Dropout, rate: 0.1}
  - {name: transformer_layer_0, type: TransformerEncoder, intermediate_dim: 16, num_heads: 2, dropout: 0.1, activation: gelu, layer_norm_epsilon: 1.0e-12, kernel_initializer: {type: TruncatedNormal, stddev: 0.02}, call: {padding_mask: padding_mask}}
  - {name: transformer_layer_1, type: TransformerEncoder, intermediate_dim: 16, num_heads: 2, dropout: 0.1, activation: gelu, layer_norm_epsilon: 1.0e-12, kernel_initializer: {type: TruncatedNormal, stddev: 0.02}, call: {padding_mask: padding_mask}}
outputs: [transformer_layer_1]
loss: mean_squared_error
"""


@pytest.fixture()
def hub_plugin(monkeypatch) -> Any:
    from specc import custom_layers

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    import keras_hub_layers

    yield keras_hub_layers
    for name in TYPES:
        custom_layers.unregister_layer(name)
    sys.modules.pop("keras_hub_layers", None)


def test_an_imported_distilbert_validates_with_shapes_and_parameters(hub_plugin) -> None:
    spec = specc.loads(DISTILBERT, "distil.yaml")
    budget = measure_spec(spec)
    assert budget.shapes["transformer_layer_1"] == (None, 8)
    assert budget.unknown == []
    d, i, vocab, length = 8, 16, 50, 16
    embedding = vocab * d + length * d                  # tied token table + positions
    encoder = (4 * d * d + 4 * d) + 2 * (2 * d) + (d * i + i + i * d + d)   # attention, 2 LN, FFN
    assert budget.total_params == embedding + 2 * d + 2 * encoder == 1744   # Keras counts 1,744


def test_the_plugins_arguments_and_call_keys_are_checked(hub_plugin) -> None:
    bad = DISTILBERT.replace("num_heads: 2, dropout", "num_head: 2, dropout", 1)
    with pytest.raises(SpecError) as info:
        specc.loads(bad, "distil.yaml")
    assert "distil.yaml:10:" in str(info.value) and "num_head" in str(info.value)
    bad = DISTILBERT.replace("call: {padding_mask: padding_mask}}\n  - {name: transformer_layer_1",
                             "call: {mask: padding_mask}}\n  - {name: transformer_layer_1")
    with pytest.raises(SpecError) as info:
        specc.loads(bad, "distil.yaml")
    assert "distil.yaml:10:" in str(info.value) and "'mask'" in str(info.value)
    bad = DISTILBERT.replace("sequence_length: 16", "sequence_length: 0")
    with pytest.raises(SpecError) as info:
        specc.loads(bad, "distil.yaml")
    assert "distil.yaml:7:" in str(info.value) and "sequence_length" in str(info.value)


def test_a_registered_activation_name_is_passed_to_keras_as_its_object(hub_plugin) -> None:
    """keras-hub's layers call keras.activations.get(value), which takes a registered
    function only as its serialized form."""
    text = DISTILBERT.replace("activation: gelu,", "activation: keras_hub>gelu_approximate,")
    spec = specc.loads(text, "distil.yaml")
    layer = next(x for x in spec.layers if x.name == "transformer_layer_0")
    assert layer.keras_kwargs()["activation"] == {
        "module": "builtins", "class_name": "function", "config": "keras_hub>gelu_approximate",
        "registered_name": "function"}
