"""specc plugin: the two custom layers of keras.io's Transformer text classifier
(https://keras.io/examples/nlp/text_classification_with_transformer/).

    PYTHONPATH=specs/transformer specc build specs/transformer/transformer_text.yaml \
        --plugin transformer_layers

Importing this module does not import Keras: the classes live in transformer_layers_keras and
are named as "module:Class", imported when a model is built or loaded. The argument models,
shape rules and parameter counts below let `specc validate` check shapes and the size budget.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

import specc

KERAS_MODULE = "transformer_layers_keras"


class TokenAndPositionEmbeddingArgs(BaseModel):
    maxlen: int = Field(gt=0, description="Longest sequence: positions are 0 .. maxlen-1.")
    vocab_size: int = Field(gt=0, description="Token ids are in [0, vocab_size).")
    embed_dim: int = Field(gt=0, description="Size of each embedding vector.")


def _embedding_shape(args: TokenAndPositionEmbeddingArgs, shapes: list) -> tuple:
    (shape,) = shapes
    if len(shape) != 1:
        raise ValueError(f"reads a sequence of token ids (rank 1 per sample), got rank "
                         f"{len(shape)}")
    if shape[0] is not None and shape[0] > args.maxlen:
        raise ValueError(f"sequences of {shape[0]} tokens are longer than maxlen {args.maxlen}")
    return (shape[0], args.embed_dim)


specc.register_layer(
    "TokenAndPositionEmbedding", f"{KERAS_MODULE}:TokenAndPositionEmbedding",
    args=TokenAndPositionEmbeddingArgs, shape=_embedding_shape,
    params=lambda a, shapes: (a.vocab_size + a.maxlen) * a.embed_dim)


class TransformerBlockArgs(BaseModel):
    embed_dim: int = Field(gt=0, description="Size of the vectors it reads and writes.")
    num_heads: int = Field(gt=0, description="Attention heads (each of size embed_dim).")
    ff_dim: int = Field(gt=0, description="Hidden size of the feed-forward network.")
    rate: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout rate.")


def _block_shape(args: TransformerBlockArgs, shapes: list) -> tuple:
    (shape,) = shapes
    if len(shape) != 2:
        raise ValueError(f"reads (sequence, features), got rank {len(shape)}")
    if shape[-1] is not None and shape[-1] != args.embed_dim:
        raise ValueError(f"its residual connections need {args.embed_dim} features "
                         f"(embed_dim), got {shape[-1]}")
    return tuple(shape)


def _block_params(a: TransformerBlockArgs, shapes: list) -> int:
    d, h = a.embed_dim, a.num_heads
    attention = 3 * (d * h * d + h * d) + (h * d * d + d)   # query, key, value; output
    ffn = (d * a.ff_dim + a.ff_dim) + (a.ff_dim * d + d)
    return attention + ffn + 2 * 2 * d                       # two LayerNormalizations


specc.register_layer(
    "TransformerBlock", f"{KERAS_MODULE}:TransformerBlock",
    args=TransformerBlockArgs, shape=_block_shape, params=_block_params)
