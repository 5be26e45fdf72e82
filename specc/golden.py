"""Golden files: a deterministic probe of a spec, written down and checked later.

A probe builds the spec in a clean Keras session with the spec's seed (0 when it has none),
evaluates it once on a fixed batch drawn from the spec's input and output shapes, and keeps:
the model summary (stable text), the parameter counts, and the loss broken down -- `loss`,
`task_loss`, one value per penalty clause and, with several outputs, `<output>_loss`.

    result = specc.golden.check("specs/model.yaml", "tests/golden")   # or update(...)
    assert result.ok, result.report()

Golden files for `dir/x.yaml` are `<dir>/x.summary.txt` and `<dir>/x.losses.json` (on another
backend than TensorFlow: `<dir>/x.jax.summary.txt`, `<dir>/x.jax.losses.json`); the JSON
states the tolerance its values are checked with, how the batch was drawn and the versions
that made it. Values are per Keras backend. `update` rewrites only the values that moved
beyond the tolerance, so regenerating on another machine changes no byte when nothing moved.
Importing this module does not import Keras or NumPy.
"""
from __future__ import annotations

import difflib
import json
import logging
import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Iterator, Literal, Sequence

from specc.artifacts import write_atomic
from specc.data import int_bound, target_kind
from specc.penalties import VIAS

#: "default" keeps each clause's own `via` (or its kind's default); the others force one.
STRATEGIES: Final[tuple[str, ...]] = ("default", *VIAS)
BATCH_SIZE: Final = 8
DATA_SEED: Final = 0
#: Tolerance written into new golden files: float32 round-off across machines and strategies.
RTOL: Final = 1e-5
ATOL: Final = 1e-8
#: A variable (None) dimension of an input is given this length in the probe batch.
FREE_DIM: Final = 4
#: Integer inputs that feed no Embedding get values in [0, SMALL_INT).
SMALL_INT: Final = 2
SUMMARY_SUFFIX: Final = ".summary.txt"
LOSSES_SUFFIX: Final = ".losses.json"

# -- the probe ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """What one spec yields under one strategy on the probe batch."""

    spec: str                         # the spec file, as given
    strategy: str
    summary: str                      # specc.runtime.summary.summary_text, no trailing newline
    values: dict[str, float]          # loss, task_loss, every clause, <output>_loss
    params: dict[str, int]            # total, trainable, non_trainable
    settings: dict[str, Any] = field(default_factory=dict)   # how the batch was drawn


def probe(spec_path: str | os.PathLike, strategy: str = "default", *,
          batch_size: int = BATCH_SIZE, data_seed: int = DATA_SEED,
          overrides: Sequence[Any] = (), limits: Any = None) -> Probe:
    """Build the spec in a clean session and evaluate it once on the probe batch.
    `overrides` and `limits` are specc.load's."""
    import keras

    import specc
    from specc.runtime import emit
    from specc.runtime.deep import deep_call
    from specc.runtime.summary import summary_text

    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    spec = specc.load(spec_path, overrides=overrides, limits=limits)
    graph = specc.lower(spec, None if strategy == "default" else strategy)
    seed = spec.seed if spec.seed is not None else 0
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = emit(graph)

    def run() -> tuple[str, dict[str, Any]]:
        summary = summary_text(model)
        x, y = probe_batch(graph, model, batch_size, data_seed)
        with _quiet_retracing():
            return summary, model.evaluate(x, y, batch_size=batch_size, verbose=0,
                                           return_dict=True)

    summary, logs = deep_call(run, layers=len(graph.nodes))
    keys = ["loss", "task_loss", *graph.term_names]
    if len(graph.outputs) > 1:
        keys += [f"{o}_loss" for o in graph.outputs]
    values = {k: float(logs[k]) for k in keys if k in logs}
    return Probe(str(spec_path), strategy, summary, values, _param_counts(model),
                 {"batch_size": batch_size, "data_seed": data_seed, "seed": seed})


def probe_batch(graph: Any, model: Any, batch_size: int = BATCH_SIZE,
                data_seed: int = DATA_SEED) -> tuple[Any, Any]:
    """The fixed batch (x, y): inputs in spec order, then targets in output order.

    Floats are standard normal; integer inputs are in [0, input_dim) of the smallest Embedding
    they reach (else [0, SMALL_INT)); targets follow the output's loss (one-hot rows for
    categorical losses, class ids for sparse ones, 0/1 for binary ones, positive values for
    poisson / msle / mape, standard normal otherwise).
    """
    import numpy as np

    rng = np.random.RandomState(data_seed)
    xs = []
    for name, shape, dtype in graph.inputs:
        full = (batch_size, *(FREE_DIM if d is None else d for d in shape))
        if dtype == "bool":
            xs.append(rng.randint(0, 2, full).astype(bool))
        elif "int" in dtype:
            xs.append(rng.randint(0, int_bound(graph, name, SMALL_INT), full).astype(dtype))
        else:
            xs.append(rng.standard_normal(full).astype(dtype))
    x = xs[0] if len(xs) == 1 else xs
    declared = model.outputs[:len(graph.outputs)]
    shapes = [tuple(t.shape) for t in declared]
    if any(d is None for s in shapes for d in s[1:]):      # variable lengths: run it to see
        got = model.predict_on_batch(x)
        got = got if isinstance(got, (list, tuple)) else [got]
        shapes = [tuple(a.shape) for a in got[:len(graph.outputs)]]
    ys = [_target(rng, target_kind(graph, o), (batch_size, *s[1:]))
          for o, s in zip(graph.outputs, shapes)]
    return x, (ys[0] if len(ys) == 1 else ys)


def _target(rng: Any, kind: str, shape: tuple[int, ...]) -> Any:
    import numpy as np

    if kind == "one_hot":
        ids = rng.randint(0, shape[-1], shape[:-1])
        return np.eye(shape[-1], dtype="float32")[ids]
    if kind == "class_ids":
        return rng.randint(0, shape[-1], shape[:-1]).astype("int32")
    if kind == "binary":
        return rng.randint(0, 2, shape).astype("float32")
    if kind == "positive":
        return rng.uniform(0.5, 1.5, shape).astype("float32")
    return rng.standard_normal(shape).astype("float32")


def _param_counts(model: Any) -> dict[str, int]:
    def count(weights: list[Any]) -> int:
        return sum(math.prod(int(d) for d in w.shape) for w in weights)

    trainable = count(model.trainable_weights)
    non_trainable = count(model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable,
            "non_trainable": non_trainable}


@contextmanager
def _quiet_retracing() -> Iterator[None]:
    """Each probe builds a new model, so TensorFlow warns about retracing: not news here."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- golden files ---------------------------------------------------------------------------
def golden_paths(spec_path: str | os.PathLike, directory: str | os.PathLike | None = None,
                 backend: str | None = None) -> tuple[Path, Path]:
    """(summary, losses) files of a spec for a Keras backend (default: the running one), in
    `directory` or next to the spec: `<spec>.summary.txt` and `<spec>.losses.json` on
    TensorFlow (the names since the first release), `<spec>.<backend>.summary.txt` and
    `<spec>.<backend>.losses.json` on another backend."""
    spec = Path(spec_path)
    folder = Path(directory) if directory is not None else spec.parent
    backend = backend or _backend()
    stem = spec.stem if backend == "tensorflow" else f"{spec.stem}.{backend}"
    return folder / (stem + SUMMARY_SUFFIX), folder / (stem + LOSSES_SUFFIX)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def running_versions() -> dict[str, str]:
    """specc, Keras and the backend (named as Keras names it) with their versions."""
    import importlib

    import keras

    from specc import __version__

    backend = _backend()
    try:
        module = sys.modules.get(backend) or importlib.import_module(backend)
        backend_version = str(getattr(module, "__version__", "unknown"))
    except ImportError:                                  # pragma: no cover - a renamed backend
        backend_version = "unknown"
    return {"specc": __version__, "keras": keras.__version__, backend: backend_version}


def _show_versions(versions: dict[str, Any]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def _rounded(value: float) -> float:
    """Nine significant digits: every float32 survives the trip through JSON text."""
    return float(f"{value:.9g}")


def losses_document(result: Probe) -> dict[str, Any]:
    return {
        "strategy": result.strategy,
        "backend": _backend(),
        "versions": running_versions(),
        "probe": dict(result.settings),
        "rtol": RTOL,
        "atol": ATOL,
        "params": dict(result.params),
        "values": {k: _rounded(v) for k, v in result.values.items()},
    }


def updated_document(result: Probe, old: dict[str, Any] | None) -> dict[str, Any]:
    """The losses JSON for a probe, keeping from `old` every value within its tolerance.

    A value that moved beyond `old`'s tolerance (which is kept), a key added or gone, new
    parameter counts or probe settings are written.  The versions are the running ones when
    anything changed (every value kept is within tolerance of this run), else `old`'s: a file
    that nothing moved stays as it was, whatever machine or versions regenerate it.
    """
    new = losses_document(result)
    if not isinstance(old, dict) or not isinstance(old.get("values"), dict):
        return new
    kept = old["values"]
    try:
        rtol, atol = float(old.get("rtol", RTOL)), float(old.get("atol", ATOL))
        moved = {m.key for m in compare_values(kept, result.values, rtol, atol)}
    except (TypeError, ValueError):                 # a hand-edited file: write it anew
        return new
    values = {k: (v if k in moved else kept[k]) for k, v in new["values"].items()}
    doc = {**new, "rtol": rtol, "atol": atol, "values": values}
    same = {k: v for k, v in doc.items() if k != "versions"} == \
        {k: v for k, v in old.items() if k != "versions"}
    if same and isinstance(old.get("versions"), dict):
        doc["versions"] = old["versions"]
    return doc


def golden_texts(result: Probe, old: dict[str, Any] | None = None) -> tuple[str, str]:
    """The two files' contents for a probe: summary text, losses JSON (see updated_document)."""
    return (result.summary + "\n",
            json.dumps(updated_document(result, old), indent=2, ensure_ascii=False) + "\n")


@dataclass(frozen=True)
class Moved:
    """One value that differs from its golden: None where the key is missing on that side."""

    key: str
    expected: float | int | None
    got: float | int | None

    @property
    def relative(self) -> float | None:
        if self.expected is None or self.got is None:
            return None
        if self.expected == 0:
            return math.inf if self.got != 0 else 0.0
        return (self.got - self.expected) / abs(self.expected)


def compare_values(expected: dict[str, float], got: dict[str, float], rtol: float = RTOL,
                   atol: float = ATOL) -> list[Moved]:
    """Keys whose values moved beyond |got - expected| <= atol + rtol * |expected|."""
    moved = []
    for key in [*expected, *(k for k in got if k not in expected)]:
        e, g = expected.get(key), got.get(key)
        if e is None or g is None or not abs(g - e) <= atol + rtol * abs(e):
            moved.append(Moved(key, e, g))
    return moved


def compare_params(expected: dict[str, int], got: dict[str, int]) -> list[Moved]:
    keys = [*expected, *(k for k in got if k not in expected)]
    return [Moved(f"params.{k}", expected.get(k), got.get(k)) for k in keys
            if expected.get(k) != got.get(k)]


def moved_table(moved: list[Moved]) -> str:
    """term | expected | got | relative change, aligned."""
    def show(v: float | int | None) -> str:
        return "(missing)" if v is None else (str(v) if isinstance(v, int) else f"{v:.9g}")

    def change(m: Moved) -> str:
        r = m.relative
        return "n/a" if r is None else ("inf" if math.isinf(r) else f"{r:+.3e}")

    rows = [("term", "expected", "got", "relative change"),
            *((m.key, show(m.expected), show(m.got), change(m)) for m in moved)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3]
                     for r in rows)


@dataclass(frozen=True)
class GoldenResult:
    """The outcome of checking (or writing) one spec's golden files."""

    spec: str
    status: Literal["match", "mismatch", "missing", "written", "unchanged"]
    summary_path: Path
    losses_path: Path
    summary_diff: str = ""
    moved: tuple[Moved, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("match", "written", "unchanged")

    def report(self) -> str:
        """One status line, then the summary diff and the table of moved values, if any."""
        head = {
            "match": f"ok        {self.spec}",
            "unchanged": f"unchanged {self.spec}",
            "written": f"wrote     {self.summary_path}, {self.losses_path}",
            "missing": f"{self.spec}: golden files missing for the {_backend()} backend "
                       f"({self.summary_path}, {self.losses_path}); create them with "
                       f"`specc golden --update` on this backend",
            "mismatch": f"{self.spec}: differs from its golden files "
                        f"({self.summary_path}, {self.losses_path})",
        }[self.status]
        parts = [head, *self.notes]
        if self.summary_diff:
            parts.append(self.summary_diff.rstrip("\n"))
        if self.moved:
            parts.append(moved_table(list(self.moved)))
        return "\n".join(parts)


def read_losses(path: str | os.PathLike) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check(spec_path: str | os.PathLike, directory: str | os.PathLike | None = None,
          strategy: str = "default", *, overrides: Sequence[Any] = (),
          limits: Any = None) -> GoldenResult:
    """Probe the spec (with the batch settings its golden file records) and compare."""
    import specc

    specc.load(spec_path, overrides=overrides, limits=limits)  # a bad spec is reported as such
    summary_path, losses_path = golden_paths(spec_path, directory)
    missing = [p for p in (summary_path, losses_path) if not p.is_file()]
    if missing:
        return GoldenResult(str(spec_path), "missing", summary_path, losses_path)
    expected = read_losses(losses_path)
    settings = expected.get("probe", {})
    result = probe(spec_path, strategy, batch_size=int(settings.get("batch_size", BATCH_SIZE)),
                   data_seed=int(settings.get("data_seed", DATA_SEED)), overrides=overrides,
                   limits=limits)
    return compare(result, summary_path.read_text(encoding="utf-8"), expected,
                   summary_path, losses_path)


def compare(result: Probe, expected_summary: str, expected: dict[str, Any],
            summary_path: Path, losses_path: Path) -> GoldenResult:
    """Compare a probe with golden contents (summary text, parsed losses JSON)."""
    notes = []
    backend = _backend()
    recorded, running = expected.get("versions"), running_versions()
    if isinstance(recorded, dict):
        if recorded != running:
            notes.append(f"note: {losses_path} was made with {_show_versions(recorded)}; this "
                         f"is {_show_versions(running)} (values are judged by the tolerance)")
    elif expected.get("backend", backend) != backend:
        notes.append(f"note: the golden values were recorded on the {expected['backend']} "
                     f"backend, this is {backend}; golden values are per backend")
    got_summary = result.summary + "\n"
    diff = "".join(difflib.unified_diff(
        expected_summary.splitlines(keepends=True), got_summary.splitlines(keepends=True),
        f"{summary_path} (golden)", f"{result.spec} (built now)"))
    moved = (compare_params(expected.get("params", {}), result.params)
             + compare_values(expected.get("values", {}), result.values,
                              float(expected.get("rtol", RTOL)), float(expected.get("atol", ATOL))))
    status = "mismatch" if diff or moved else "match"
    return GoldenResult(result.spec, status, summary_path, losses_path, diff, tuple(moved),
                        tuple(notes) if status == "mismatch" or isinstance(recorded, dict)
                        else ())


def _read_old(path: Path) -> dict[str, Any] | None:
    """An existing losses file, or None when there is none or it is not a JSON object."""
    try:
        old = read_losses(path)
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) else None


def write(result: Probe, summary_path: Path, losses_path: Path) -> bool:
    """Write a probe's golden files atomically, keeping what did not move; True if any changed."""
    old = _read_old(losses_path)
    changed = False
    for path, text in zip((summary_path, losses_path), golden_texts(result, old)):
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text.encode("utf-8"))
            changed = True
    return changed


def update(spec_path: str | os.PathLike, directory: str | os.PathLike | None = None, *,
           overrides: Sequence[Any] = (), limits: Any = None) -> GoldenResult:
    """Probe the spec (with the batch settings its losses file records) and rewrite what moved.

    Values within the file's tolerance keep their bytes; see updated_document.
    """
    summary_path, losses_path = golden_paths(spec_path, directory)
    old = _read_old(losses_path)
    settings = old.get("probe", {}) if old else {}
    try:
        batch = dict(batch_size=int(settings.get("batch_size", BATCH_SIZE)),
                     data_seed=int(settings.get("data_seed", DATA_SEED)))
    except (AttributeError, TypeError, ValueError):
        batch = dict(batch_size=BATCH_SIZE, data_seed=DATA_SEED)
    changed = write(probe(spec_path, batch_size=batch["batch_size"],
                          data_seed=batch["data_seed"], overrides=overrides, limits=limits),
                    summary_path, losses_path)
    return GoldenResult(str(spec_path), "written" if changed else "unchanged",
                        summary_path, losses_path)


def assert_golden(spec_path: str | os.PathLike, directory: str | os.PathLike | None = None,
                  update_files: bool = False) -> None:
    """For users' own tests: fail with the diff and the moved values unless they match."""
    result = update(spec_path, directory) if update_files else check(spec_path, directory)
    if not result.ok:
        raise AssertionError(result.report())
