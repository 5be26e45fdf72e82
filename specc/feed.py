"""Where `specc fit` takes its data from, and how it feeds it to Keras in batches.

`open_data` (NumPy only: a command checks its data before Keras starts) recognises:

- an `.npz` file, or a folder of `NAME.npy` files (one per input and output): read into memory
  within the budget (`--max-data`), memory-mapped above it (an .npz's uncompressed members);
- a CSV table (or Parquet, with pyarrow) whose columns are named after the inputs and outputs;
- a folder of class folders: images (`keras.utils.image_dataset_from_directory`) for an
  image input, text files (`text_dataset_from_directory`) for a string input;
- `module:function`, from the command line only (never from a spec): whatever it returns
  (a tf.data.Dataset, a keras.utils.PyDataset, a generator, arrays) goes to `model.fit`.

Arrays are fed by `ArrayFeed`, a keras.utils.PyDataset: each epoch's order is a permutation
drawn from (seed, epoch), so a resumed run feeds what an uninterrupted one would, and several
processes each take their slice of the same global batches.
"""
from __future__ import annotations

import importlib
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from specc.errors import UsageError, quote
from specc.graph import Graph

#: `module:function` (dotted module, one function name).
CALLABLE: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
IMAGE_SUFFIXES: Final = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TABLE_SUFFIXES: Final = (".csv", ".parquet", ".pq")


@dataclass
class Data:
    """One data set: arrays (in memory or mapped), a class folder, or a user's callable."""

    kind: str                          # "arrays", "images", "texts", "callable"
    where: str                         # as the user wrote it
    x: dict[str, Any] = field(default_factory=dict)
    y: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    files: int = 0

    @property
    def n(self) -> int:
        return len(next(iter(self.x.values()))) if self.x else self.files

    @property
    def mapped(self) -> bool:
        import numpy as np

        return any(isinstance(a, np.memmap) for a in [*self.x.values(), *self.y.values()])


def open_data(where: str, graph: Graph, *, allow_nonfinite: bool, max_bytes: int,
              spill: str | None, from_spec: bool = False) -> Data:
    """The data set at `where`, checked as far as it can be before Keras starts."""
    from specc.data import load_npy_folder, load_npz, load_table

    path = Path(where)
    if CALLABLE.match(where) and not path.exists():
        if from_spec:
            raise UsageError(f"data {where!r}: a module:function runs code, so it is taken from "
                             "the command line only (--data), never from a spec")
        return Data("callable", where)
    if path.is_dir():
        if any((path / f"{n}.npy").is_file() for n, _, _ in graph.inputs):
            x, y = load_npy_folder(path, graph, allow_nonfinite, max_bytes)
            return Data("arrays", where, x, y)
        return _class_folder(path, graph)
    if not path.is_file():
        raise UsageError(f"{where}: no such file or folder (give an .npz, a folder of .npy "
                         "files, a .csv table, a folder of class folders, or module:function)")
    if path.suffix.lower() in TABLE_SUFFIXES:
        x, y = load_table(path, graph, allow_nonfinite, max_bytes, spill)
        return Data("arrays", where, x, y)
    x, y = load_npz(path, graph, allow_nonfinite, max_bytes)
    return Data("arrays", where, x, y)


def _class_folder(path: Path, graph: Graph) -> Data:
    """A folder of class folders: images for an image input, .txt files for a string input;
    one input and one classification output."""
    from specc.data import target_kind

    shown = str(path)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UsageError(f"{shown}: a folder of class folders feeds one input and one output; "
                         f"this spec has {len(graph.inputs)} and {len(graph.outputs)}")
    name, shape, dtype = graph.inputs[0]
    out = graph.outputs[0]
    if target_kind(graph, out) not in ("class_ids", "one_hot", "binary"):
        raise UsageError(f"{shown}: a folder of class folders gives class labels; output "
                         f"{quote(out)} has no classification loss")
    text = dtype == "string"
    if not text and (len(shape) != 3 or shape[-1] not in (1, 3, 4) or None in shape[:2]):
        raise UsageError(f"{shown}: a folder of images feeds an input of shape (height, width, "
                         f"1, 3 or 4 channels); input {quote(name)} has shape "
                         f"{tuple(shape)} (a string input takes a folder of text files)")
    suffixes = (".txt",) if text else IMAGE_SUFFIXES
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise UsageError(f"{shown}: found {len(classes)} class folder(s); give one sub-folder "
                         "per class (at least two)")
    counts = {}
    for c in classes:
        counts[c] = sum(1 for f in (path / c).rglob("*") if f.suffix.lower() in suffixes)
    empty = [c for c, k in counts.items() if not k]
    if empty:
        kind = "text (.txt)" if text else "image (" + ", ".join(IMAGE_SUFFIXES) + ")"
        raise UsageError(f"{shown}: class folder {quote(empty[0])} holds no {kind} files")
    return Data("texts" if text else "images", str(path), classes=classes,
                files=sum(counts.values()))


def check_classes(data: Data, graph: Graph, output_shapes: dict[str, tuple[int, ...]]) -> None:
    """A class folder's class count against the output's (once the model is built)."""
    from specc.data import target_kind

    out = graph.outputs[0]
    units = int(output_shapes[out][-1]) if output_shapes[out] else 1
    kind = target_kind(graph, out)
    want = 2 if kind == "binary" else units
    if kind == "binary" and units != 1:
        want = -1
    if len(data.classes) != want:
        raise UsageError(f"{data.where}: {len(data.classes)} class folders "
                         f"({', '.join(data.classes[:5])}{', ...' if len(data.classes) > 5 else ''})"
                         f"; output {quote(out)} has {units} unit(s)"
                         + (" for a binary loss (give 2 classes to 1 unit)" if kind == "binary"
                            else ", one per class"))


def call_user(where: str) -> Any:
    """Import `module` (the current folder first on the path) and call `function()`."""
    module, _, name = where.partition(":")
    sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"--data {where}: cannot import {module!r} ({exc})") from None
    finally:
        sys.path.pop(0)
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise UsageError(f"--data {where}: module {module!r} has no function {name!r}")
    return fn()


# ------------------------------------------------------------------------------ splitting


def split(n: int, fraction: float, seed: int) -> tuple[Any, Any]:
    """(training rows, validation rows) of n samples: a seeded random `fraction` held out,
    each part in ascending order."""
    import numpy as np

    held = int(n * fraction)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[held:]), np.sort(order[:held])


# ------------------------------------------------------------------------------ feeding


def array_feed(x: dict[str, Any], y: dict[str, Any], rows: Any, batch_size: int, *,
               shuffle: bool, seed: int, share: tuple[int, int] | None = None,
               first_epoch: int | None = None) -> Any:
    """A keras.utils.PyDataset over `rows` of the arrays `x`, `y` (dicts by name; a single
    input is fed as an array). `share=(p, P)`: of every whole global batch of `batch_size`
    rows, process p feeds the p-th slice of batch_size / P; a last partial global batch is
    dropped so that every process takes the same steps.

    For training (`first_epoch` given) it is an endless stream, fed with
    `steps_per_epoch=feed.steps`: batch i is batch i % steps of epoch first_epoch + i // steps,
    whose order (when `shuffle`) is the permutation drawn from (seed, epoch). A pure function
    of i: what Keras's prefetching or a resumed run asks for is what an uninterrupted run is
    fed, whatever the threads do. Without `first_epoch`: one pass, in order."""
    import keras
    import numpy as np

    from specc.data import release

    class ArrayFeed(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rows = np.asarray(rows)
            n = len(self.rows)
            self.steps = n // batch_size if share else math.ceil(n / batch_size)
            self.single = len(x) == 1
            self.mapped = [a for a in [*x.values(), *y.values()] if isinstance(a, np.memmap)]
            self._order: tuple[int, Any] | None = None

        @property
        def num_batches(self) -> int | None:
            return None if first_epoch is not None else self.steps

        def order(self, epoch: int) -> Any:
            if self._order is None or self._order[0] != epoch:
                perm = (np.random.default_rng([seed, epoch]).permutation(len(self.rows))
                        if shuffle else np.arange(len(self.rows)))
                self._order = (epoch, self.rows[perm])
            return self._order[1]

        def __getitem__(self, i: int) -> Any:
            epoch, i = ((first_epoch + i // self.steps, i % self.steps)
                        if first_epoch is not None else (0, i))
            take = self.order(epoch)[i * batch_size:(i + 1) * batch_size]
            if share:
                p, count = share
                part = batch_size // count
                take = take[p * part:(p + 1) * part]
            take = np.sort(take)            # reads in file order; the batch mean is the same
            bx = {k: np.asarray(a[take]) for k, a in x.items()}
            by = {k: np.asarray(a[take]) for k, a in y.items()}
            for a in self.mapped:      # a mapped file's pages: one batch's at a time
                release(a)
            return (next(iter(bx.values())) if self.single else bx), by

    return ArrayFeed()


def folder_datasets(data: Data, graph: Graph, batch_size: int, fraction: float,
                    seed: int) -> tuple[Any, Any]:
    """(training, validation or None) tf.data.Datasets of a class folder, split by Keras
    with `seed` (the same files each run)."""
    import keras

    from specc.data import target_kind

    kind = target_kind(graph, graph.outputs[0])
    label_mode = {"class_ids": "int", "one_hot": "categorical", "binary": "binary"}[kind]
    split_args: dict[str, Any] = (dict(validation_split=fraction, subset="both", seed=seed)
                                  if fraction else dict(seed=seed))
    name, shape, _ = graph.inputs[0]
    if data.kind == "images":
        color = {1: "grayscale", 3: "rgb", 4: "rgba"}[shape[-1]]
        made = keras.utils.image_dataset_from_directory(
            data.where, labels="inferred", label_mode=label_mode, class_names=data.classes,
            color_mode=color, batch_size=batch_size, image_size=tuple(shape[:2]),
            verbose=False, **split_args)
    else:
        made = keras.utils.text_dataset_from_directory(
            data.where, labels="inferred", label_mode=label_mode, class_names=data.classes,
            batch_size=batch_size, verbose=False, **split_args)
    train, val = made if fraction else (made, None)
    if data.kind == "texts" and len(shape) == 1:      # a string input of shape (1,)
        import tensorflow as tf

        def add_axis(t: Any, label: Any) -> Any:
            return tf.expand_dims(t, -1), label
        train = train.map(add_axis)
        val = val.map(add_axis) if val is not None else None
    return train, val


def check_fed(obj: Any, graph: Graph, where: str) -> None:
    """What a user's function returned, as far as it can be seen without training: a
    tf.data.Dataset's element structure or a PyDataset's first batch, whose inputs (a dict)
    must be named after the spec's inputs."""
    first = None
    spec = getattr(obj, "element_spec", None)
    if spec is not None:
        first = spec
    elif hasattr(obj, "__getitem__") and hasattr(obj, "on_epoch_end"):      # a PyDataset
        first = obj[0]
    if first is None:
        return
    if not isinstance(first, (tuple, list)) or len(first) < 2:
        raise UsageError(f"--data {where}: its batches are not (inputs, targets) pairs")
    inputs = first[0]
    names = [n for n, _, _ in graph.inputs]
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - set(names))
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            raise UsageError(f"--data {where}: its inputs are named {sorted(inputs)}; the spec's "
                             f"are {names}")
    elif len(names) != 1 and not isinstance(inputs, (tuple, list)):
        raise UsageError(f"--data {where}: gives one input array; the spec has {len(names)} "
                         f"inputs ({', '.join(names)}): give a dict by name")
