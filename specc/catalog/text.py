"""Text preprocessing layers: StringLookup, TextVectorization (keras/src/layers/preprocessing).

Both read strings (an input declared `dtype: string`) and learn a vocabulary: given inline
(`vocabulary: [...]`), or adapted on the training data by `specc fit` (specc.fit_adapt)
before the first step. Only the arguments that are plain data are taken: no callables
(`standardize`, `split`), no vocabulary file, no sparse or ragged outputs, no `invert` (its
output would be strings again).

Keras declares some outputs with shapes or dtypes other than those it computes (a
`multi_hot` StringLookup on one string per sample counts the whole batch as one sample; a
splitting TextVectorization on inputs of shape (1,) declares (batch, 1, depth) and computes
(batch, depth)); the shape rules refuse those inputs, and the dtype rule leaves the dtype
unknown where Keras declares float32 and computes int64 (`one_hot`, `multi_hot`, `count`).
The layers hold no weights (the vocabulary is a lookup table, saved in the `.keras` file's
assets).
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, ClassVar, Final, Literal, Optional, Union

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from specc.catalog.args import NonNegFloat
from specc.catalog.definition import LayerDef, Shape, ShapeProblem, fmt, no_weights
from specc.spec.base import LayerSpec, NonNegInt, PositiveInt

#: The most entries an inline vocabulary may have (larger ones are adapted from data).
MAX_VOCABULARY: Final = 100_000

Token = Annotated[str, Field(max_length=1000)]
Vocabulary = Annotated[Optional[Annotated[list[Token], Field(
    min_length=1, max_length=MAX_VOCABULARY)]], Field(
    description="The tokens, most frequent first, without the mask and OOV tokens (the layer "
    "adds them) or with them first in Keras's order (as get_vocabulary() gives them; tf_idf: "
    "the idf_weights then give their weight); left out: learned from the training data by "
    "`specc fit` (adapt).")]
IdfWeights = Annotated[Optional[Annotated[list[NonNegFloat], Field(
    min_length=1, max_length=MAX_VOCABULARY)]], Field(
    description="With output_mode tf_idf and a vocabulary: one inverse document frequency "
    "per entry of the vocabulary (without the OOV tokens in it, theirs is the mean).")]
MaxTokens = Annotated[Optional[Annotated[int, Field(ge=2)]], Field(
    description="The largest vocabulary (mask and OOV tokens included); null: no limit.")]
PadToMaxTokens = Annotated[bool, Field(
    description="Non-int output modes: the output has max_tokens entries whatever the "
    "vocabulary's size.")]


class _Lookup(LayerSpec):
    """What StringLookup and TextVectorization share: a vocabulary, given or adapted."""

    #: No dtype policy: Keras computes these layers in strings and ignores one.
    dtype: ClassVar[None] = None
    regularizes_own_output: ClassVar[bool] = False   # Keras refuses activity_regularizer

    def vocabulary_size(self) -> Optional[int]:
        """The entries of the encoded output (non-int modes): max_tokens when padded, the
        vocabulary with the OOV indices when it is given; None: known after adapt only."""
        if self.pad_to_max_tokens:
            return self.max_tokens
        if self.vocabulary is None:
            return None
        return len(self.tokens()) + self.token_start()

    def token_start(self) -> int:
        raise NotImplementedError

    def special_tokens(self) -> list[str]:
        raise NotImplementedError

    def leading_tokens(self) -> list[str]:
        """The mask and OOV tokens at the front of Keras's get_vocabulary(), in its order."""
        raise NotImplementedError

    def tokens(self) -> list[str]:
        """The vocabulary less the leading mask and OOV tokens, where it starts with them
        (Keras's `set_vocabulary` reads it so)."""
        vocabulary = self.vocabulary or []
        lead = self.leading_tokens()
        return vocabulary[len(lead):] if vocabulary[:len(lead)] == lead else vocabulary

    def adapted(self) -> bool:
        """Whether `specc fit` learns its vocabulary from the data (none given)."""
        return self.vocabulary is None

    def _check_lookup(self) -> None:
        mode = self.output_mode
        if self.pad_to_max_tokens and self.max_tokens is None:
            raise PydanticCustomError("lookup", "pad_to_max_tokens needs max_tokens")
        if self.idf_weights is not None and (mode != "tf_idf" or self.vocabulary is None):
            raise PydanticCustomError("lookup", "idf_weights go with output_mode tf_idf and a "
                                      "vocabulary; leave them out")
        if self.vocabulary is None:
            if mode != "int" and not self.pad_to_max_tokens:
                raise PydanticCustomError(
                    "lookup", "output_mode {mode} without a vocabulary: the output's size is "
                    "known only once the vocabulary is adapted, after the model is built; "
                    "give max_tokens and pad_to_max_tokens: true (or a vocabulary)",
                    {"mode": mode})
            return
        if mode == "tf_idf" and self.idf_weights is None:
            raise PydanticCustomError("lookup", "output_mode tf_idf with a vocabulary needs "
                                      "idf_weights, one per token")
        if self.idf_weights is not None and len(self.idf_weights) != len(self.vocabulary):
            raise PydanticCustomError(
                "lookup", "idf_weights has {n} entries, the vocabulary {m}: give one per token",
                {"n": len(self.idf_weights), "m": len(self.vocabulary)})
        seen: set[str] = set()
        special = self.special_tokens()
        tokens = self.tokens()
        if not tokens:
            raise PydanticCustomError("lookup", "the vocabulary holds only the mask and OOV "
                                      "tokens: give its tokens")
        for token in tokens:
            if token in special:
                raise PydanticCustomError(
                    "lookup", "the vocabulary holds {token}, a token the layer adds itself "
                    "(mask or OOV): leave it out", {"token": repr(token)})
            if token in seen:
                raise PydanticCustomError("lookup", "the vocabulary holds {token} twice",
                                          {"token": repr(token)})
            seen.add(token)
        size = len(tokens) + self.token_start()
        if self.max_tokens is not None and size > self.max_tokens:
            raise PydanticCustomError(
                "lookup", "the vocabulary makes {size} entries with the mask and OOV tokens, "
                "over max_tokens {max}", {"size": size, "max": self.max_tokens})


class StringLookup(_Lookup):
    """Maps strings to indices in a vocabulary (int), or encodes them (one_hot, multi_hot,
    count, tf_idf)."""

    type: Literal["StringLookup"]
    max_tokens: MaxTokens = None
    num_oov_indices: NonNegInt = Field(
        1, description="How many indices out-of-vocabulary tokens are hashed to.")
    mask_token: Optional[Token] = Field(
        None, description="A token that stands for padding (index 0 in int mode); null: none.")
    oov_token: Token = Field("[UNK]", description="The token an out-of-vocabulary index "
                             "stands for.")
    vocabulary: Vocabulary = None
    idf_weights: IdfWeights = None
    output_mode: Literal["int", "one_hot", "multi_hot", "count", "tf_idf"] = Field(
        "int", description="int: one index per token; one_hot: one vector per token; "
        "multi_hot, count, tf_idf: one vector per sample.")
    pad_to_max_tokens: PadToMaxTokens = False

    def token_start(self) -> int:
        mask = 1 if self.mask_token is not None and self.output_mode == "int" else 0
        return mask + self.num_oov_indices

    def special_tokens(self) -> list[str]:
        return [t for t in (self.mask_token, self.oov_token) if t is not None]

    def leading_tokens(self) -> list[str]:
        mask = [self.mask_token] if self.mask_token is not None and self.output_mode == "int" \
            else []
        return [*mask, *[self.oov_token] * self.num_oov_indices]

    @model_validator(mode="after")
    def _consistent(self) -> "StringLookup":
        self._check_lookup()
        return self


class TextVectorization(_Lookup):
    """Turns text into token indices (int, padded or cut to output_sequence_length) or one
    vector per sample (multi_hot, count, tf_idf)."""

    type: Literal["TextVectorization"]
    max_tokens: MaxTokens = None
    standardize: Optional[Literal["lower_and_strip_punctuation", "lower",
                                  "strip_punctuation"]] = Field(
        "lower_and_strip_punctuation", description="How text is standardized before it is "
        "split; null: as it is.")
    split: Optional[Literal["whitespace", "character"]] = Field(
        "whitespace", description="How text is split into tokens; null: the input holds "
        "tokens already (one per entry of its last axis).")
    ngrams: Optional[Union[PositiveInt, Annotated[list[PositiveInt], Field(
        min_length=1, max_length=8)]]] = Field(
        None, description="n-grams made from the tokens: n (every size up to n) or a list of "
        "sizes; null: single tokens.")
    output_mode: Literal["int", "multi_hot", "count", "tf_idf"] = Field(
        "int", description="int: token indices (0 pads); multi_hot, count, tf_idf: one vector "
        "per sample.")
    output_sequence_length: Optional[PositiveInt] = Field(
        None, description="int mode: every sample padded or cut to this many tokens; null: "
        "the longest of the batch.")
    pad_to_max_tokens: PadToMaxTokens = False
    vocabulary: Vocabulary = None
    idf_weights: IdfWeights = None

    def token_start(self) -> int:
        return 2 if self.output_mode == "int" else 1       # "" (mask, int mode) and [UNK]

    def special_tokens(self) -> list[str]:
        return ["", "[UNK]"]

    def leading_tokens(self) -> list[str]:
        return ["", "[UNK]"] if self.output_mode == "int" else ["[UNK]"]

    @model_validator(mode="after")
    def _consistent(self) -> "TextVectorization":
        if self.output_sequence_length is not None and self.output_mode != "int":
            raise PydanticCustomError("lookup", "output_sequence_length goes with output_mode "
                                      "int only")
        self._check_lookup()
        return self

    def keras_kwargs(self) -> dict[str, Any]:
        kwargs = super().keras_kwargs()
        if isinstance(kwargs.get("ngrams"), list):    # Keras takes an int or a tuple
            kwargs["ngrams"] = tuple(kwargs["ngrams"])
        return kwargs


def _string_lookup_shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    shape = shapes[0]
    mode = layer.output_mode
    if mode == "int":
        return shape
    depth = layer.vocabulary_size()
    if mode == "one_hot":
        return (*shape[:-1], depth) if shape and shape[-1] == 1 else (*shape, depth)
    if len(shape) != 1:
        raise ShapeProblem(f"StringLookup with output_mode {mode} encodes one sample's tokens "
                           f"along one axis: it needs inputs of shape (batch, tokens), got "
                           f"{fmt(shape)}")
    return (depth,)


def _text_vectorization_shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    shape = shapes[0]
    if layer.split is not None and shape not in ((), (1,)):
        raise ShapeProblem(f"TextVectorization splits one string per sample: it needs inputs "
                           f"of shape (batch) or (batch, 1), got {fmt(shape)}")
    if layer.split is None and len(shape) != 1:
        raise ShapeProblem("TextVectorization with split: null reads tokens: it needs inputs "
                           f"of shape (batch, tokens), got {fmt(shape)}")
    if layer.output_mode == "int":
        return (layer.output_sequence_length,)
    if layer.split is not None and shape == (1,):
        raise ShapeProblem(f"TextVectorization with output_mode {layer.output_mode} on inputs "
                           "of shape (batch, 1) is declared (batch, 1, tokens) by Keras but "
                           "computes (batch, tokens): declare the input with shape []")
    return (layer.vocabulary_size(),)


def _lookup_dtype(layer: Any, dtype: str) -> Optional[str]:
    """int64 indices; tf_idf in floats; the other encodings unknown (Keras declares float32,
    computes int64)."""
    return {"int": "int64", "tf_idf": "float32"}.get(layer.output_mode)


def _import_vocabulary(writer: Any, name: str, args: dict[str, Any], layer: Any) -> list[str]:
    """specc import: an adapted layer's vocabulary (kept in the .keras file's assets, not its
    config) written inline, the same ids; with tf_idf, its OOV tokens first and the idf
    weights of all (Keras's adapt weighs the OOV tokens from the data). Keras's
    `vocabulary_size` records the size, no argument. Unadapted: left out (`specc fit`)."""
    args.pop("vocabulary_size", None)
    if args.get("vocabulary") is not None:            # given to the constructor: its config
        return []
    tf_idf = args.get("output_mode") == "tf_idf"
    if not layer.get_vocabulary(include_special_tokens=False):
        return []
    vocabulary = [str(t) for t in layer.get_vocabulary(include_special_tokens=tf_idf)]
    if len(vocabulary) > MAX_VOCABULARY:
        return [f"its adapted vocabulary has {len(vocabulary):,} entries, over the "
                f"{MAX_VOCABULARY:,} a spec holds inline"]
    args["vocabulary"] = vocabulary
    if tf_idf:
        weights = getattr(layer, "_lookup_layer", layer).idf_weights   # TextVectorization's
        args["idf_weights"] = [float(w) for w in weights.numpy()[:len(vocabulary)]]
    writer.grouped.setdefault("adapted vocabulary written inline (`vocabulary:`)",
                              []).append(name)
    return []


#: The layer types that read strings.
STRING_READERS: Final = ("StringLookup", "TextVectorization")

LAYERS: Final = (
    LayerDef("StringLookup", StringLookup, _string_lookup_shape, no_weights, _lookup_dtype,
             importer=_import_vocabulary),
    LayerDef("TextVectorization", TextVectorization, _text_vectorization_shape, no_weights,
             _lookup_dtype, importer=_import_vocabulary),
)
