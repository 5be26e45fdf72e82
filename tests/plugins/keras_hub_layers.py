"""keras-hub's transformer layers as specc layer types: a one-file plugin a user writes to
import keras-hub backbones (`specc import --plugin keras_hub_layers.py model.keras`).

Each class is given as "module:Class" with a Pydantic model of its arguments, so that
`specc validate` with this plugin imports neither keras-hub nor TensorFlow; the class is
imported when a model is built or loaded (keras-hub registers it serializable itself). The
argument models take what the classes' `get_config()` gives; `call_args` names the masks a
backbone passes to a layer's call (written as a format 2 `call:` mapping).
"""
from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, Field, field_serializer

import specc
from specc.catalog.args import ActivationArg, LayerInitializer

_HUB = "keras_hub.src.layers.modeling"
#: keras-hub's own activation (BERT, GPT-2): gelu with the tanh approximation, registered
#: with Keras under this name.
Activation = Union[ActivationArg, Literal["keras_hub>gelu_approximate"]]


class ReversibleEmbeddingArgs(BaseModel):
    input_dim: int = Field(gt=0)
    output_dim: int = Field(gt=0)
    tie_weights: bool = True
    embeddings_initializer: LayerInitializer = "uniform"
    mask_zero: bool = False
    reverse_dtype: Optional[str] = None
    logit_soft_cap: Optional[float] = None


class PositionEmbeddingArgs(BaseModel):
    sequence_length: int = Field(gt=0)
    initializer: LayerInitializer = "glorot_uniform"


class TokenAndPositionEmbeddingArgs(BaseModel):
    vocabulary_size: int = Field(gt=0)
    sequence_length: int = Field(gt=0)
    embedding_dim: int = Field(gt=0)
    tie_weights: bool = True
    embeddings_initializer: LayerInitializer = "uniform"
    mask_zero: bool = False


class TransformerArgs(BaseModel):
    intermediate_dim: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    activation: Activation = "relu"
    layer_norm_epsilon: float = Field(1e-5, gt=0.0)
    kernel_initializer: LayerInitializer = "glorot_uniform"
    bias_initializer: LayerInitializer = "zeros"
    normalize_first: bool = False

    @field_serializer("activation")
    def _keras_activation(self, value):
        """A registered function's name as the object Keras deserializes (keras-hub's
        layers take `keras.activations.get(value)`, which knows only Keras's own names)."""
        if isinstance(value, str) and ">" in value:
            return {"module": "builtins", "class_name": "function", "config": value,
                    "registered_name": "function"}
        return value


class TransformerDecoderArgs(TransformerArgs):
    #: what TransformerDecoder.get_config() records of its first build (it builds itself
    #: from them when given)
    decoder_sequence_shape: Optional[list[Optional[int]]] = None
    encoder_sequence_shape: Optional[list[Optional[int]]] = None


def _embedding_shape(args, shapes):
    return (*shapes[0], args.output_dim)


def _embedding_params(args, shapes):
    return args.input_dim * args.output_dim * (1 if args.tie_weights else 2)


def _same_shape(args, shapes):
    (shape,) = shapes
    if len(shape) != 2:
        raise ValueError(f"reads (sequence, features) per sample, got rank {len(shape)}")
    return shape


def _position_params(args, shapes):
    features = shapes[0][-1]
    return None if features is None else args.sequence_length * features


def _token_and_position_shape(args, shapes):
    (shape,) = shapes
    if len(shape) != 1:
        raise ValueError(f"reads token ids (sequence,) per sample, got rank {len(shape)}")
    return (*shape, args.embedding_dim)


def _token_and_position_params(args, shapes):
    vocab = args.vocabulary_size * args.embedding_dim * (1 if args.tie_weights else 2)
    return vocab + args.sequence_length * args.embedding_dim


def _block_params(args, features, attentions):
    """Weights of a transformer block over `features` (key_dim = features // heads):
    each attention 4 d*h*k + 3 h*k + d, a layer normalization 2 d after each, the
    feed-forward d*i + i + i*d + d."""
    if features is None:
        return None
    d, i, hk = features, args.intermediate_dim, (features // args.num_heads) * args.num_heads
    attention = 4 * d * hk + 3 * hk + d
    return attentions * (attention + 2 * d) + 2 * d * i + i + d + 2 * d


def _encoder_params(args, shapes):
    return _block_params(args, shapes[0][-1], 1)


def _decoder_params(args, shapes):
    return _block_params(args, shapes[0][-1], 1 + (args.encoder_sequence_shape is not None))


specc.register_layer("ReversibleEmbedding", "keras.layers:ReversibleEmbedding",
                     args=ReversibleEmbeddingArgs, shape=_embedding_shape,
                     params=_embedding_params)
specc.register_layer("PositionEmbedding", f"{_HUB}.position_embedding:PositionEmbedding",
                     args=PositionEmbeddingArgs, shape=_same_shape, params=_position_params)
specc.register_layer("TokenAndPositionEmbedding",
                     f"{_HUB}.token_and_position_embedding:TokenAndPositionEmbedding",
                     args=TokenAndPositionEmbeddingArgs, shape=_token_and_position_shape,
                     params=_token_and_position_params)
specc.register_layer("TransformerEncoder", f"{_HUB}.transformer_encoder:TransformerEncoder",
                     args=TransformerArgs, shape=_same_shape, params=_encoder_params,
                     call_args=("padding_mask", "attention_mask"))
specc.register_layer("TransformerDecoder", f"{_HUB}.transformer_decoder:TransformerDecoder",
                     args=TransformerDecoderArgs, shape=_same_shape, params=_decoder_params,
                     call_args=("encoder_sequence", "decoder_padding_mask",
                                "decoder_attention_mask", "encoder_padding_mask",
                                "encoder_attention_mask", "use_causal_mask"))
