"""Where `specc fit` takes its data from, and how it feeds it to Keras in batches.

`open_data` (NumPy only: a command checks its data before Keras starts) recognises:

- an `.npz` file, or a folder of `NAME.npy` files (one per input and output): read into memory
  within the budget (`--max-data`), memory-mapped above it (an .npz's uncompressed members);
- a CSV table (or Parquet, with pyarrow) whose columns are named after the inputs and outputs;
- a folder of class folders: images for an image input, text files for a string input,
  each file read as keras.utils.image_dataset_from_directory / text_dataset_from_directory
  read it (specc.feed_tf);
- `module:function`, from the command line only (never from a spec): whatever it returns
  (a tf.data.Dataset, a keras.utils.PyDataset, a generator, arrays) goes to `model.fit`.

Arrays are fed by `array_feed` (a tf.data pipeline on TensorFlow, a keras.utils.PyDataset
elsewhere), a class folder's files by `folder_feed` (tf.data): each epoch's order is a
permutation drawn from (seed, epoch), so a resumed run feeds what an uninterrupted one would,
and several processes each take their slice of the same global batches.
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
from specc.feed_rows import epoch_rows, gather
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
    paths: list[str] = field(default_factory=list)     # a class folder's files, by class
    labels: list[int] = field(default_factory=list)    # each file's class (its index)

    @property
    def files(self) -> int:
        return len(self.paths)

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
    paths: list[str] = []
    labels: list[int] = []
    for i, c in enumerate(classes):
        found = sorted(str(f) for f in (path / c).rglob("*")
                       if f.suffix.lower() in suffixes and f.is_file())
        if not found:
            kind = "text (.txt)" if text else "image (" + ", ".join(IMAGE_SUFFIXES) + ")"
            raise UsageError(f"{shown}: class folder {quote(c)} holds no {kind} files")
        paths += found
        labels += [i] * len(found)
    return Data("texts" if text else "images", str(path), classes=classes, paths=paths,
                labels=labels)


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
               first_epoch: int | None = None) -> tuple[Any, int]:
    """(feed, batches per epoch) over `rows` of the arrays `x`, `y` (dicts by name; a single
    input is fed as an array), each epoch's batches as `epoch_rows` cuts them (`share`: this
    process's slice of every whole global batch).

    For training (`first_epoch` given) the feed is an endless stream, fed with
    `steps_per_epoch`: batch i is batch i % steps of epoch first_epoch + i // steps. A pure
    function of i: what Keras's prefetching or a resumed run asks for is what an
    uninterrupted run is fed, whatever the threads do. Without `first_epoch`: one pass.

    On TensorFlow the feed is a tf.data pipeline as Keras's own for arrays (rows gathered in
    parallel, prefetched; a memory-mapped array is read batch by batch, its pages released);
    on the other backends a keras.utils.PyDataset."""
    import keras
    import numpy as np

    rows = np.asarray(rows)
    n = len(rows)
    steps = n // batch_size if share else math.ceil(n / batch_size)
    local = batch_size // share[1] if share else batch_size

    def rows_of(epoch: int) -> Any:
        return epoch_rows(rows, epoch, batch_size, shuffle=shuffle, seed=seed, share=share)

    if keras.backend.backend() == "tensorflow":
        from specc.feed_tf import tf_feed

        return tf_feed(x, y, rows_of, local, first_epoch, steps), steps
    return _py_feed(x, y, rows_of, steps, local, first_epoch), steps


def _py_feed(x: dict[str, Any], y: dict[str, Any], rows_of: Any, steps: int, local: int,
             first_epoch: int | None) -> Any:
    """The feed as a keras.utils.PyDataset (the backends other than TensorFlow)."""
    import keras

    class ArrayFeed(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self._order: tuple[int, Any] | None = None

        @property
        def num_batches(self) -> int | None:
            return None if first_epoch is not None else steps

        def __getitem__(self, i: int) -> Any:
            epoch, i = (first_epoch + i // steps, i % steps) if first_epoch is not None else (0, i)
            if self._order is None or self._order[0] != epoch:
                self._order = (epoch, rows_of(epoch))
            return gather(x, y, self._order[1][i * local:(i + 1) * local])

    return ArrayFeed()


def data_feed(data: Data, graph: Graph, rows: Any, batch_size: int, *, shuffle: bool,
              seed: int, share: tuple[int, int] | None = None,
              first_epoch: int | None = None) -> tuple[Any, int]:
    """(feed, batches per epoch) of `rows` of a data set of arrays or of a class folder."""
    kw = dict(shuffle=shuffle, seed=seed, share=share, first_epoch=first_epoch)
    if data.kind == "arrays":
        return array_feed(data.x, data.y, rows, batch_size, **kw)
    return folder_feed(data, graph, rows, batch_size, **kw)


def folder_feed(data: Data, graph: Graph, rows: Any, batch_size: int, *, shuffle: bool,
                seed: int, share: tuple[int, int] | None = None,
                first_epoch: int | None = None) -> tuple[Any, int]:
    """(feed, batches per epoch) of a class folder's files `rows` (indices into data.paths),
    batched and ordered as `array_feed` does, each file read as Keras's
    image_dataset_from_directory or text_dataset_from_directory reads it (specc.feed_tf)."""
    import numpy as np

    from specc.data import target_kind
    from specc.feed_tf import folder_tf_feed

    rows = np.asarray(rows)
    steps = len(rows) // batch_size if share else math.ceil(len(rows) / batch_size)
    local = batch_size // share[1] if share else batch_size

    def rows_of(epoch: int) -> Any:
        return epoch_rows(rows, epoch, batch_size, shuffle=shuffle, seed=seed, share=share)

    _, shape, _ = graph.inputs[0]
    label = {"class_ids": "int", "one_hot": "categorical",
             "binary": "binary"}[target_kind(graph, graph.outputs[0])]
    return folder_tf_feed(data.paths, data.labels, len(data.classes), rows_of, local,
                          first_epoch, steps, image=tuple(shape) if data.kind == "images" else None,
                          text_axis=data.kind == "texts" and len(shape) == 1,
                          label_mode=label, output=graph.outputs[0]), steps


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
