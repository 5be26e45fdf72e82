"""`specc fit`'s options: FitOptions from the command line and the spec's `training:` section,
and the data read and checked before Keras starts. No NumPy at import: a refusal here
(a bad option, a missing file) comes before any heavy module is loaded."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specc.graph import Graph


class Diverged(Exception):
    """Training produced a non-finite loss or weights; nothing was written."""

@dataclass(frozen=True)
class FitOptions:
    """How `specc fit` trains: the command's options, checked once (`check`)."""

    data: str | None = None              # see specc.feed.open_data; None: synthetic data
    epochs: int = 5
    batch_size: int = 64
    samples: int = 2048                  # synthetic samples
    validation_split: float = 0.2
    verbose: int | str = "auto"
    allow_nonfinite: bool = False
    max_data_bytes: int | None = None    # None: specc.data.MAX_DATA_BYTES
    share: tuple[int, int] | None = None  # (process id, process count): data-parallel
    validation: str | None = None        # a validation set (as `data`); else a split
    seed: int | None = None              # the split's and the order's; None: the spec's seed
    resume: bool = False                 # continue a killed run from its last whole epoch
    patience: int | None = None          # early stopping after this many epochs without gain
    monitor: str | None = None           # what early stopping and the best checkpoint watch
    checkpoint: bool = False             # keep the best epoch's model as best.keras
    spill: str | None = None             # a folder for tables read into mapped .npy files
    data_from_spec: bool = False         # `data` was named by the spec (no module:function)

    def check(self) -> None:
        from specc.errors import UsageError

        for what, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size),
                            ("--samples", self.samples)):
            if value < 1:
                raise UsageError(f"{what} {value}: give a whole number of at least 1")
        if not 0.0 <= self.validation_split < 1.0:
            raise UsageError(f"validation split {self.validation_split}: give a fraction in "
                             "[0, 1)")
        if self.patience is not None and self.patience < 0:
            raise UsageError(f"--early-stopping {self.patience}: give a number of epochs >= 0")


def training_options(spec: Any, args: Any, spill: str | None = None) -> FitOptions:
    """FitOptions from the command line (`args`, argparse), each option left out taken from
    the spec's `training:` section (paths relative to the spec), then the defaults. A data
    source named by the spec is never code (module:function)."""
    t = spec.training
    doc = spec._document

    def given(name: str) -> Any:
        return getattr(args, name, None)

    def path(value: str | None) -> str | None:
        from specc.feed import CALLABLE

        if value is None or doc is None or Path(value).is_absolute() or CALLABLE.match(value):
            return value
        return str(Path(doc.file).parent / value)

    def pick(cli: Any, key: str, default: Any) -> Any:
        if cli is not None:
            return cli
        value = getattr(t, key, None) if t is not None else None
        return default if value is None else value

    data, from_spec = given("data"), False
    validation = given("validation")
    if data is None and t is not None and t.data is not None:
        data, from_spec = path(t.data), True
        if validation is None:
            validation = path(t.validation)
    stopping = t.early_stopping if t is not None else None
    return FitOptions(
        data=data, data_from_spec=from_spec, validation=validation,
        epochs=pick(given("epochs"), "epochs", 5),
        batch_size=pick(given("batch_size"), "batch_size", 64),
        samples=2048 if given("samples") is None else given("samples"),
        validation_split=pick(given("validation_split"), "validation_split", 0.2),
        seed=pick(given("seed"), "seed", None),
        allow_nonfinite=bool(given("allow_nonfinite")), max_data_bytes=given("max_data"),
        resume=bool(given("resume")),
        patience=(given("early_stopping") if given("early_stopping") is not None else
                  stopping.patience if stopping is not None else None),
        monitor=given("monitor") or (stopping.monitor if stopping is not None else None),
        checkpoint=bool(pick(given("checkpoint"), "checkpoint", False)), spill=spill)

def read_data(graph: Graph, options: FitOptions) -> tuple[Any, Any]:
    """The data sets (training, validation or None) as specc.feed.Data, checked against the
    plan; (None, None) for synthetic data. NumPy only: a command reads and checks its data
    before Keras starts."""
    from specc.data import MAX_DATA_BYTES
    from specc.errors import UsageError
    from specc.feed import open_data

    if options.data is None:
        if options.validation is not None:
            raise UsageError("--validation goes with --data (the synthetic set is split)")
        return None, None
    limit = MAX_DATA_BYTES if options.max_data_bytes is None else options.max_data_bytes
    spill = options.spill
    kw = dict(allow_nonfinite=options.allow_nonfinite, max_bytes=limit, spill=spill,
              from_spec=options.data_from_spec)
    train = open_data(options.data, graph, **kw)
    val = open_data(options.validation, graph, **kw) if options.validation else None
    if val is not None and val.kind != train.kind and "callable" not in (train.kind, val.kind):
        raise UsageError(f"--validation {options.validation}: a {val.kind} set; the training "
                         f"data is a {train.kind} set")
    return train, val
