"""Format 2's source-level constructs, as models for the JSON Schema (editor completion).

Expansion (specc/expand.py) reads these constructs itself, with located errors at the use
and the definition; these models describe the same keys for `specc schema`.
"""
# No `from __future__ import annotations`: Pydantic would eval every annotation string.

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field

from specc.spec.base import LayerRef, Name, Strict

ParamType = Literal["int", "float", "bool", "str", "list", "any"]
Names = Union[LayerRef, Annotated[list[LayerRef], Field(min_length=1)]]


class ParamSpec(Strict):
    type: ParamType = Field("any", description="The parameter's type.")
    default: Any = Field(None, description="Its value when a use does not give one; absent: "
                                           "the parameter is required.")
    description: Optional[str] = None


class UseEntry(Strict):
    """An instance of a block: its layers are named `<name>.<local name>`."""

    name: Name = Field(description="The instance's name: the prefix of its layers' names; "
                                   "the name refers to its first output.")
    use: Name = Field(description="The block to instantiate.")
    from_: Optional[Union[Names, dict[Name, LayerRef]]] = Field(
        None, alias="from", description="The block's inputs: a name, a list in the block's "
                                        "`inputs` order, or a mapping input -> name.")
    with_: Optional[dict[Name, Any]] = Field(None, alias="with",
                                             description="Values of the block's parameters.")
    trainable: Optional[Union[bool, str]] = Field(
        None, description="false freezes every layer with weights in the instance.")
    repeat: Optional[Union[int, str]] = Field(
        None, description="Make <name>1 .. <name>N, each reading the previous; `i` (0-based) "
                          "is in scope for `${...}`.")
    if_: Optional[Union[bool, str]] = Field(None, alias="if",
                                            description="false: the entry does not exist.")


class ShareEntry(Strict):
    """Another call of a layer or a block instance: the same weights, other inputs."""

    name: LayerRef = Field(description="The name of this call.")
    share: LayerRef = Field(description="The layer or block instance whose weights it uses.")
    from_: Optional[Names] = Field(None, alias="from", description="Input(s) of this call.")
    call: Optional[dict[str, Any]] = Field(None, description="Tensors as call arguments.")
    repeat: Optional[Union[int, str]] = None
    if_: Optional[Union[bool, str]] = Field(None, alias="if")


class BlockDef(Strict):
    """A named, parameterized sub-graph, defined once and used many times."""

    description: Optional[str] = None
    params: dict[Name, Union[ParamType, ParamSpec, int, float, bool, str, list]] = Field(
        default_factory=dict, description="name: a type (`int`: required), a default value "
                                          "(`1`), or `{type, default}`.")
    inputs: Names = Field(["x"], description="The block's input names (default: [x]).")
    outputs: Optional[Names] = Field(None, description="Local names of its outputs "
                                                       "(default: the last entry).")
    layers: Annotated[list[Any], Field(min_length=1)] = Field(
        description="Entries, as at top level; names are local; `${param}` anywhere.")
    penalties: list[Any] = Field(default_factory=list,
                                 description="Clauses made once per instance, named "
                                             "`<instance>.<name>`.")
    weight_penalties: list[Any] = Field(default_factory=list)
