"""The penalty catalog as data: each kind's parameters, formula and default strategy.

Formulas are written once, here; the README's table and `specc explain` are generated from
this catalog, and `specc/runtime/terms.py` implements each entry with keras.ops.
Custom kinds are registered from Python (a plugin the user chose to import), never because a
spec names a module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Final, Literal, Mapping

from pydantic import BaseModel

from specc.errors import UsageError

Via = Literal["activity_regularizer", "add_loss", "output"]
VIAS: Final[tuple[str, ...]] = ("activity_regularizer", "add_loss", "output")


@dataclass(frozen=True)
class PenaltyKind:
    """One entry of the catalog.

    `batch_statistic` kinds look at the whole batch at once (not a mean of per-sample values);
    under tf.distribute their input is gathered to the global batch first.
    `term` is None for built-in kinds (implemented in specc.runtime.terms) and the user's
    function `term(a, clause) -> scalar` (keras.ops, a: (B, ...) tensor) for a plugin.
    `masked` is the formula on a masked tensor (MASK_NOTE); `takes_axis` kinds accept `axis`
    (AXIS_NOTE); `needs_time` kinds read a (batch, time, features...) tensor.
    """

    name: str
    formula: str
    default_via: Via
    batch_statistic: bool = False
    params: type[BaseModel] | None = None
    term: Callable[[Any, Any], Any] | None = None
    masked: str = ""
    takes_axis: bool = False
    needs_time: bool = False


_PER_SAMPLE_NOTE: Final = "`reduction: sum` replaces mean_i by Σ_i."

#: How a Keras mask enters every formula (specc.runtime.terms.weights).
MASK_NOTE: Final = (
    "On a masked tensor (a Keras mask of shape (B, T), from an Embedding with `mask_zero: "
    "true` or a Masking layer, carried on by the layers after it), w_ij = 1 where element j "
    "of sample i lies at an unmasked step and 0 where it lies at a masked one; without a mask "
    "every w_ij = 1 and each formula below is the one above. Masked steps are left out: they "
    "add nothing to a sum, and every mean divides by the count of unmasked elements (a term "
    "whose count is 0 is 0).")
#: What `axis` does to the batch statistics (kl_sparsity, decorrelation).
AXIS_NOTE: Final = (
    "`axis` (an axis or a list of axes of the layer's output, counted with the batch axis "
    "as 0, negative from the end) names the feature axes: a is laid out as rows × features, "
    "the rows i running over the batch and every axis not named, the features j over the "
    "named ones. On a sequence (B, T, U), `axis: -1` gives ρ̂_j over batch and time for each "
    "unit j, and decorrelation over the B·T step vectors. Without `axis` the rows are the "
    "samples and the features all other axes, flattened.")

CATALOG: Final[dict[str, PenaltyKind]] = {
    k.name: k
    for k in (
        PenaltyKind("l1", "r · mean_i Σ_j |a_ij|", "activity_regularizer",
                    masked="r · mean_i Σ_j w_ij·|a_ij|"),
        PenaltyKind("l2", "r · mean_i Σ_j a_ij²", "activity_regularizer",
                    masked="r · mean_i Σ_j w_ij·a_ij²"),
        PenaltyKind("l1_l2", "l1 · mean_i Σ_j |a_ij| + l2 · mean_i Σ_j a_ij²",
                    "activity_regularizer",
                    masked="l1 · mean_i Σ_j w_ij·|a_ij| + l2 · mean_i Σ_j w_ij·a_ij²"),
        PenaltyKind("mean_abs", "r · mean over all i, j of |a_ij|", "activity_regularizer",
                    masked="r · Σ_ij w_ij·|a_ij| / Σ_ij w_ij"),
        PenaltyKind("kl_sparsity",
                    "r · Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j = mean_i a_ij clipped to [1e-7, 1−1e-7], "
                    "KL(ρ‖q) = ρ·log(ρ/q) + (1−ρ)·log((1−ρ)/(1−q))",
                    "add_loss", batch_statistic=True, takes_axis=True,
                    masked="r · Σ_j KL(ρ ‖ ρ̂_j) over the features j with Σ_i w_ij > 0, "
                           "ρ̂_j = Σ_i w_ij·a_ij / Σ_i w_ij clipped to [1e-7, 1−1e-7]"),
        PenaltyKind("decorrelation",
                    "r · mean over pairs i ≠ k of cos(a_i, a_k), cos with 1e-7 added to each "
                    "norm; 0 when B = 1", "add_loss", batch_statistic=True, takes_axis=True,
                    masked="r · mean over pairs i ≠ k of the N rows with some w_ij = 1 of "
                           "cos(w_i·a_i, w_k·a_k); 0 when N < 2"),
        PenaltyKind("ar", "r · mean over i, t, u of a_itu², a of shape (B, T, U...)",
                    "add_loss", needs_time=True,
                    masked="r · Σ_itu w_it·a_itu² / Σ_itu w_it"),
        PenaltyKind("tar", "r · mean over i, 1 ≤ t < T, u of (a_itu − a_i(t−1)u)², "
                           "a of shape (B, T, U...); 0 when T = 1",
                    "add_loss", needs_time=True,
                    masked="r · Σ_itu v_it·(a_itu − a_i(t−1)u)² / Σ_itu v_it, "
                           "v_it = w_it·w_i(t−1) (both steps unmasked)"),
    )
}
BUILTIN_KINDS: Final[frozenset[str]] = frozenset(CATALOG)

WEIGHT_FORMULAS: Final[Mapping[str, str]] = {
    "l1": "r · Σ|w|",
    "l2": "r · Σw²",
    "l1_l2": "l1 · Σ|w| + l2 · Σw²",
    "orthogonal": "r · ‖WᵀW − I‖²_F = r · Σ_jk ((WᵀW)_jk − δ_jk)², W = the weight as a matrix "
                  "(n, m): m = its last axis (units, filters), n = the product of the others",
}
#: How `orthogonal` reads a weight as the matrix W of its formula.
ORTHOGONAL_NOTE: Final = (
    "Each weight variable is one W, its own term (the clause's value is their sum): a Dense "
    "kernel (in, units) as it is; a convolution kernel (k_1, ..., k_d, in, filters) reshaped to "
    "(k_1·...·k_d·in, filters), so the columns, one per filter, are pushed to be orthonormal; "
    "a depthwise kernel (k..., in, multiplier) to (k...·in, multiplier); an Embedding's "
    "(vocabulary, dim) as it is; a recurrent kernel (units, gates·units) as it is; a 1-D "
    "weight (a normalization's gamma) is one column, (Σw² − 1)². With m > n, WᵀW has rank "
    "at most n and the term cannot reach 0.")


@dataclass(frozen=True)
class PairKind:
    """A penalty between two tensors, s (the first layer) and t (the second, the target)."""

    name: str
    formula: str
    #: what the kind needs of the tensors' shape, beyond being equal ("" : nothing)
    needs: str = ""


#: The penalties between two tensors (`pair_penalties:`). s = the first layer's output, t =
#: the second's, of one shape (B, ...); s_i, t_i = sample i flattened; ε = 1e-7.
PAIR_CATALOG: Final[dict[str, PairKind]] = {
    k.name: k
    for k in (
        PairKind("mse", "r · mean over all i, j of (s_ij − t_ij)²"),
        PairKind("distillation",
                 "r · T² · mean_n Σ_c p_nc·(log p_nc − log q_nc), p_n = softmax(t_n / T), "
                 "q_n = softmax(s_n / T) over the last axis c, n running over the batch and "
                 "every other axis (= T² · KL(softmax(t/T) ‖ softmax(s/T)), log-softmax, no "
                 "clipping)", needs="a class axis (the last) of size 2 or more"),
        PairKind("cosine", "r · mean_i (1 − s_i·t_i / ((‖s_i‖ + ε)·(‖t_i‖ + ε))), s_i and t_i "
                           "sample i flattened, ε = 1e-7"),
    )
}
PAIR_VIAS: Final[tuple[str, ...]] = ("add_loss", "output")
#: What `stop_gradient` (default true) does, for every pair kind.
STOP_GRADIENT_NOTE: Final = (
    "`stop_gradient: true` (the default) makes t a constant target: the term's gradient "
    "reaches the weights below s only (t's branch is trained by nothing but its own losses; "
    "the teacher of a distillation is usually frozen too). `stop_gradient: false` lets it "
    "flow into both.")

_PLUGINS: dict[str, PenaltyKind] = {}
#: Installed packages declare their plugin modules here (pyproject: [project.entry-points]).
ENTRY_POINT_GROUP: Final = "specc.penalties"


def register_penalty(name: str, *, params: type[BaseModel] | None = None, formula: str,
                     batch_statistic: bool = False,
                     default_via: Via = "add_loss") -> Callable[[Callable], Callable]:
    """Register a custom activation-penalty kind from Python code (a plugin).

    The decorated function computes the term: `fn(a, clause) -> scalar`, with keras.ops on the
    tensor `a` (batch first) and the validated clause (its extra parameters as attributes).
    `params` is a Pydantic model of the clause's own parameters (besides name/layer/at/via/kind).

        @specc.register_penalty("max_abs", formula="r · max |a|")
        def max_abs(a, clause):
            return clause.rate * keras.ops.max(keras.ops.abs(a))
    """
    if name in CATALOG:
        raise ValueError(f"penalty kind {name!r} is built in and cannot be replaced")

    def decorate(fn: Callable) -> Callable:
        _PLUGINS[name] = PenaltyKind(name, formula, default_via, batch_statistic, params, fn)
        return fn

    return decorate


def unregister_penalty(name: str) -> None:
    _PLUGINS.pop(name, None)


_entry_points_loaded = False
#: Installed plugins whose import failed: one line each, naming the plugin and the error.
_BROKEN: list[str] = []


class PluginError(UsageError):
    """An installed plugin cannot be imported: a usage error (exit 2), like a bad --plugin."""


def lookup(name: str) -> PenaltyKind | None:
    """The catalog entry of a kind; installed plugins are loaded the first time one is asked
    for a kind that is neither built in nor registered. When it is still unknown and an
    installed plugin failed to import, that plugin is the likely culprit: PluginError."""
    global _entry_points_loaded
    found = CATALOG.get(name) or _PLUGINS.get(name)
    if found is None and not _entry_points_loaded:
        _entry_points_loaded = True
        load_entry_points()
        found = _PLUGINS.get(name)
    if found is None and _BROKEN:
        raise PluginError(
            f"penalty kind {str(name)[:40]!r} is unknown and {_BROKEN[0]}"
            + (f" (and {len(_BROKEN) - 1} more)" if len(_BROKEN) > 1 else ""))
    return found


def known_kinds() -> list[str]:
    return [*CATALOG, *sorted(_PLUGINS)]


def load_entry_points(group: str = ENTRY_POINT_GROUP, broken: list[str] | None = None,
                      load: Callable[[Any], Any] | None = None) -> list[str]:
    """Import the plugins installed under an entry-point group (`specc.penalties`, or
    `specc.layers` for specc.custom_layers); failures are remembered in `broken`.

    Installing a package is the user's choice of code to run; a spec file never names one.
    A plugin whose import fails is remembered (see lookup), and the others still load.
    """
    from importlib.metadata import entry_points

    broken = _BROKEN if broken is None else broken
    loaded = []
    for ep in entry_points(group=group):
        try:
            ep.load() if load is None else load(ep)
        except (Exception, SystemExit) as exc:      # the plugin's own bug, not specc's
            dist = getattr(ep, "dist", None)
            origin = f" of {dist.name} {dist.version}" if dist is not None else ""
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            reason = reason if len(reason) <= 160 else reason[:157] + "..."
            broken.append(f"the installed plugin {ep.name!r} (entry point {ep.value}{origin}) "
                           f"cannot be imported ({reason}); fix or uninstall it")
            continue
        loaded.append(ep.name)
    return loaded
