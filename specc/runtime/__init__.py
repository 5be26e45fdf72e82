"""The Keras-facing stage: the only package of specc that imports Keras."""
from __future__ import annotations

from specc.runtime.emit import emit
from specc.runtime.objects import ActivityPenalty, OutputTap, PenaltyTap, SpecModel, WeightPenalty

__all__ = ["emit", "ActivityPenalty", "OutputTap", "PenaltyTap", "SpecModel", "WeightPenalty"]
