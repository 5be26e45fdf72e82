"""The layer arguments, as the spec language sees them: the catalog's models, re-exported.

Each layer type is defined once, in its family's module of specc.catalog (argument model and
rules side by side); this module keeps the names the rest of specc and its users import:
`LAYER_TYPES`, `AnyLayer`, every layer model by its type name, and the shared bases.
"""
from specc.catalog import LAYER_TYPES, AnyLayer
from specc.catalog.args import (
    KERNEL_BIAS, MAX_MERGE_INPUTS, ActivationArg, Layer, LayerDType, LayerInitializer,
    WeightedLayer,
)
from specc.catalog.recurrent import RecurrentArgs, RecurrentLayer

globals().update(LAYER_TYPES)          # Dense, Conv2D, ...: each model under its type name

__all__ = ["AnyLayer", "KERNEL_BIAS", "LAYER_TYPES", "MAX_MERGE_INPUTS", "ActivationArg", "Layer",
           "LayerDType", "LayerInitializer", "RecurrentArgs", "RecurrentLayer", "WeightedLayer",
           *LAYER_TYPES]
