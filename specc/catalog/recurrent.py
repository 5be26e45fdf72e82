"""Recurrent layers: SimpleRNN, LSTM, GRU and the Bidirectional wrapper (keras/src/layers/rnn)."""
# No `from __future__ import annotations`: Pydantic would eval every annotation string
# at import, which `specc validate` pays on each run.

from typing import Annotated, Any, ClassVar, Final, Literal, Mapping, Optional, Union

from pydantic import Field

from specc.catalog.args import (
    RECURRENT_WEIGHTS, ActivationArg, BiasConstraint, BiasInit, KernelConstraint, KernelInit,
    LayerInitializer, Seed, UseBias, WeightedLayer,
)
from specc.catalog.definition import LayerDef, Shape, channels, need_rank
from specc.spec.base import Constraint, Fraction, PositiveInt, Strict


class RecurrentArgs(Strict):
    """Constructor arguments of a recurrent layer: a `Bidirectional`'s nested `layer`.

    No `name` or `from`: the wrapper supplies both. The top-level recurrent layers
    (`LSTM`, ...) add them by also deriving from `LayerSpec`.
    """

    units: PositiveInt = Field(description="Size of the hidden state.")
    activation: ActivationArg = "tanh"
    use_bias: UseBias = True
    kernel_initializer: KernelInit = "glorot_uniform"
    recurrent_initializer: LayerInitializer = Field(
        "orthogonal", description="Initializer of the recurrent kernel.")
    bias_initializer: BiasInit = "zeros"
    kernel_constraint: KernelConstraint = None
    recurrent_constraint: Optional[Constraint] = Field(
        None, description="Constraint applied to the recurrent kernel.")
    bias_constraint: BiasConstraint = None
    dropout: Fraction = Field(0.0, description="Dropout rate on the inputs.")
    recurrent_dropout: Fraction = Field(0.0, description="Dropout rate on the state.")
    seed: Seed = None
    return_sequences: bool = Field(False, description="Return every step, not just the last.")
    return_state: bool = Field(False, description="Also return the final state(s): format 2 "
                               "reads them as `<layer>.state_h`/`.state_c` (LSTM) or `.state`.")
    go_backwards: bool = Field(False, description="Read the sequence backwards.")
    unroll: bool = Field(False, description="Unroll the loop (short sequences only).")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = RECURRENT_WEIGHTS

    def keras_kwargs(self) -> dict[str, Any]:
        """The constructor arguments the user wrote (name and from exist only top-level)."""
        return self.model_dump(exclude_unset=True, exclude={"name", "type", "from_", "call"})


class _GatedArgs(RecurrentArgs):
    recurrent_activation: ActivationArg = "sigmoid"
    use_cudnn: Union[Literal["auto"], bool] = Field(
        "auto", description="Use the cuDNN kernel: true, false, or 'auto' (when possible).")


class SimpleRNNArgs(RecurrentArgs):
    type: Literal["SimpleRNN"]
    state_ports: ClassVar[tuple[str, ...]] = ("state",)


class LSTMArgs(_GatedArgs):
    type: Literal["LSTM"]
    unit_forget_bias: bool = Field(True, description="Start the forget gate's bias at 1.")
    state_ports: ClassVar[tuple[str, ...]] = ("state_h", "state_c")


class GRUArgs(_GatedArgs):
    type: Literal["GRU"]
    reset_after: bool = Field(True, description="Apply the reset gate after the matmul "
                                                "(the cuDNN-compatible variant).")
    state_ports: ClassVar[tuple[str, ...]] = ("state",)


RecurrentLayer = Annotated[Union[SimpleRNNArgs, LSTMArgs, GRUArgs], Field(discriminator="type")]


# The arguments first in the bases: their weight_args win over LayerSpec's empty default.
class SimpleRNN(SimpleRNNArgs, WeightedLayer):
    """The recurrent layer at top level: its arguments plus name, from, dtype, trainable."""

    regularizes_own_output: ClassVar[bool] = False   # Keras drops its activity_regularizer


class LSTM(LSTMArgs, WeightedLayer):
    """The recurrent layer at top level: its arguments plus name, from, dtype, trainable."""


class GRU(GRUArgs, WeightedLayer):
    """The recurrent layer at top level: its arguments plus name, from, dtype, trainable."""


class Bidirectional(WeightedLayer):
    """Runs `layer` forwards and backwards and merges the two outputs.

    Its weights live in the nested layer: weight regularizers (`weight_args`, the same names
    for every recurrent type) go to the nested constructor, which Keras copies backwards.
    """

    type: Literal["Bidirectional"]
    layer: RecurrentLayer = Field(description="The recurrent layer to run both ways "
                                              "(no name or from: the wrapper names it).")
    merge_mode: Optional[Literal["concat", "sum", "mul", "ave"]] = Field(
        "concat", description="How the two outputs combine; null returns both.")

    weight_args: ClassVar[Mapping[str, tuple[str, ...]]] = RECURRENT_WEIGHTS

    def keras_kwargs(self) -> dict[str, Any]:
        """The wrapper's own arguments; build `layer` from `self.layer.keras_kwargs()`."""
        return self.model_dump(exclude_unset=True,
                               exclude={"name", "type", "from_", "layer", "call"})

    def ports(self) -> tuple[str, ...]:
        """With the nested layer's `return_state`: each direction's final state(s)."""
        return tuple(f"{side}_{p.replace('state_', '') if p != 'state' else 'state'}"
                     for side in ("forward", "backward")
                     for p in (self.layer.state_ports if self.layer.return_state else ()))

    def weight_kinds(self) -> frozenset[str]:
        if self._shares is not None:
            return frozenset()
        kinds = set(self.weight_args)
        if self.layer.use_bias is False:
            kinds.discard("bias")
        return frozenset(kinds)


def _shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    need_rank(layer, shapes[0], 2, "timesteps, features")
    steps = shapes[0][0]
    return (steps, layer.units) if layer.return_sequences else (layer.units,)


def _bidirectional_shape(layer: Any, shapes: list[Shape]) -> Optional[Shape]:
    inner = _shape(layer.layer, shapes)
    if layer.merge_mode is None:
        return None
    return (*inner[:-1], inner[-1] * 2) if layer.merge_mode == "concat" else inner


def _cell_params(cell: Any, features: int) -> int:
    u = cell.units
    gates = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[cell.type]
    bias = gates * u * cell.use_bias
    if cell.type == "GRU" and cell.reset_after:
        bias *= 2
    return gates * (features * u + u * u) + bias


def _params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    n = channels(shapes[0])
    return None if n is None else _cell_params(layer, n)


def _bidirectional_params(layer: Any, shapes: list[Shape]) -> Optional[int]:
    n = channels(shapes[0])
    return None if n is None else 2 * _cell_params(layer.layer, n)


def _nested_layer(writer: Any, name: str, args: dict[str, Any], layer: Any) -> list[str]:
    """specc import: the nested recurrent layer as `layer: {type, ...}`."""
    return writer.bidirectional(args, layer)[1]


_CALL_ARGS: Final = ("initial_state", "mask")

LAYERS: Final = (
    LayerDef("SimpleRNN", SimpleRNN, _shape, _params, "float", call_args=_CALL_ARGS),
    LayerDef("LSTM", LSTM, _shape, _params, "float", call_args=_CALL_ARGS),
    LayerDef("GRU", GRU, _shape, _params, "float", call_args=_CALL_ARGS),
    LayerDef("Bidirectional", Bidirectional, _bidirectional_shape, _bidirectional_params,
             "float", call_args=_CALL_ARGS, importer=_nested_layer),
)
