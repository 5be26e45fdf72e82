"""Static rules: what Keras would build and then fail on (or silently get wrong) at the first
fit, found at validation where the rule is knowable -- dtypes (rules.dtypes), ranks and axes
(rules.shapes), loss/metric fit (rules.targets), the size budget (specc.budget) -- and
warnings for valid but suspicious specs (rules.advice).

Errors are check functions like those of specc.checks (`(ctx) -> Iterator[Problem]`), listed
in RULES and run after the checks there. Warnings never stop a spec: `spec_warnings(spec)`
lists them for a spec that validated (`specc validate` prints them; `--strict` fails on them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Final, Iterator

from specc.budget import check_budget
from specc.context import Context, Problem
from specc.errors import Diagnostic, Span
from specc.rules.advice import (warn_after_noise, warn_embedding_ids, warn_flattened_statistic,
                                warn_frozen_weights, warn_kl_sparsity,
                                warn_linear_pre_activation, warn_logits, warn_plugin_unchecked,
                                warn_sum_reduction, warn_unread_states, warn_zero_rate)
from specc.rules.dtypes import (check_bfloat16_orthogonal, check_float_reads,
                                check_int32_arguments, check_string_reads, check_top_k_dtype,
                                check_weight_clause_dtypes)
from specc.rules.shapes import (check_attention_rank, check_axes, check_penalty_axes,
                                check_rescaling)
from specc.rules.targets import check_class_counts, check_loss_metrics

if TYPE_CHECKING:
    from specc.spec.model import Spec


RULES: Final[tuple[Callable[[Context], Iterator[Problem]], ...]] = (
    check_int32_arguments,
    check_string_reads,
    check_weight_clause_dtypes,
    check_attention_rank,
    check_axes,
    check_penalty_axes,
    check_rescaling,
    check_loss_metrics,
    check_float_reads,
    check_bfloat16_orthogonal,
    check_top_k_dtype,
    check_class_counts,
    check_budget,
)


WARNINGS: Final[tuple[Callable[[Context], Iterator[Problem]], ...]] = (
    warn_embedding_ids,
    warn_kl_sparsity,
    warn_flattened_statistic,
    warn_sum_reduction,
    warn_after_noise,
    warn_linear_pre_activation,
    warn_zero_rate,
    warn_frozen_weights,
    warn_logits,
    warn_unread_states,
    warn_plugin_unchecked,
)


def spec_warnings(spec: Spec) -> list[Diagnostic]:
    """The warnings of a validated spec, located in its document (severity "warning")."""
    from specc.topology import resolve_reads

    ctx = Context(spec)
    ctx.reads = resolve_reads(spec)
    from specc.provenance import diagnostic

    doc = getattr(spec, "_document", None)
    out = []
    for rule in WARNINGS:
        for path, message, code in rule(ctx):
            if doc is None:
                out.append(Diagnostic(Span("<spec>"), message, code, "warning"))
            else:            # located like errors: in a block instance, at the use with notes
                key = len(path) == 2 and path[0] in ("loss", "metrics")
                out.append(diagnostic(doc, path, message, code, key, "warning"))
    return sorted(out, key=lambda d: (d.span, d.code))
