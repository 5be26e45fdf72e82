"""A plugin as a user writes one: imported by the user (or `--plugin`), never by a spec."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

import specc


class MaxAbsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float = Field(ge=0.0)


@specc.register_penalty("max_abs", params=MaxAbsParams, formula="r · max_ij |a_ij|")
def max_abs(a, clause):
    from keras import ops   # Keras only when the term is computed, not at validation

    return clause.rate * ops.max(ops.abs(a))
