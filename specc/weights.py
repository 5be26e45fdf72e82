"""`weights: FILE` — a spec's trained weights, stored beside it in an HDF5 file.

The file holds plain arrays, one group per spec layer that owns weights, in Keras's own
`.weights.h5` shape with the layer's spec name as its key:

    /layers/<layer name>/vars/0, 1, ...     (the layer's `weights`, in Keras's order)

`specc import --weights` writes it; `specc build` (any command that builds) loads it. Reading
it never runs code: the HDF5 signature is checked before the file is opened, links to other
files and non-numeric data are refused, every layer name and array shape is compared with the
built model before any value is read, and a mismatch is one located error.

`check_file` is the validation-time part (no TensorFlow, no h5py): the path, relative to the
spec, names a regular file that starts with the HDF5 signature. `load_into` runs at build.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final, Iterator, Mapping, Sequence

#: The first 8 bytes of an HDF5 file (no user block): what Keras and h5py write.
HDF5_SIGNATURE: Final = b"\x89HDF\r\n\x1a\n"
SUFFIX: Final = ".weights.h5"
#: Marks a file written by specc (an attribute of the root group); informative only.
FORMAT_ATTR: Final = "specc_weights"
FORMAT_VALUE: Final = "layers-by-name/1"


def resolve(path: str, spec_file: str | None) -> Path:
    """`path` as written in the spec: relative to the spec's folder (the working folder for
    a spec that has no file, e.g. `specc.loads`)."""
    p = Path(path)
    try:
        p = p.expanduser()
    except RuntimeError:        # `~nosuchuser/...`: no such home folder; check_file says so
        pass
    if p.is_absolute() or not spec_file or spec_file.startswith("<"):
        return p
    return Path(spec_file).resolve().parent / p


def check_file(path: str, spec_file: str | None) -> str | None:
    """Why `path` is not a usable weights file, or None. Reads at most 8 bytes."""
    if not path.endswith(SUFFIX):
        return f"a weights file ends in {SUFFIX!r} (got {path!r})"
    if path.startswith("~"):
        try:
            Path(path).expanduser()
        except RuntimeError:
            user = path[1:].split("/", 1)[0].split(os.sep, 1)[0]
            return (f"weights file {path!r}: there is no home folder for "
                    f"{'user ' + repr(user) if user else 'the current user'}")
    where = resolve(path, spec_file)
    try:
        if not where.is_file():
            return (f"weights file {str(where)!r} " +
                    ("is not a regular file" if where.exists() else "does not exist"))
        with open(where, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as exc:
        return f"weights file {str(where)!r} cannot be read ({exc.strerror or exc})"
    if head != HDF5_SIGNATURE:
        return f"{str(where)!r} is not a Keras weights file (no HDF5 signature)"
    return None


class WeightsError(ValueError):
    """The weights file does not fit the model; the message names the layer and the arrays."""


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + (",)" if len(shape) == 1 else ")")


def owned_layers(model: Any) -> Iterator[Any]:
    """The model's layers that hold weights, once each (a shared layer is one layer)."""
    for layer in model.layers:
        if layer.weights:
            yield layer


def write(path: str | os.PathLike, arrays: Mapping[str, Sequence[Any]]) -> None:
    """Write {layer name: [arrays in the layer's weights order]} to `path`."""
    import h5py
    import numpy as np

    with h5py.File(path, "w") as f:
        f.attrs[FORMAT_ATTR] = FORMAT_VALUE
        layers = f.create_group("layers")
        for name, values in arrays.items():
            group = layers.create_group(name).create_group("vars")
            for i, value in enumerate(values):
                group.create_dataset(str(i), data=np.asarray(value))


def _walk_links(group: Any, where: str) -> None:
    """Refuse soft and external links anywhere in the file (they could read another file)."""
    import h5py

    for key in group:
        link = group.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise WeightsError(f"{where}/{key} is a link ({type(link).__name__}); a weights "
                               "file holds plain arrays only")
        item = group[key]
        if isinstance(item, h5py.Group):
            _walk_links(item, f"{where}/{key}")


def _datasets(f: Any) -> dict[str, list[Any]]:
    """{layer name: [datasets 0..n-1]} of the file; its structure checked, no value read."""
    import h5py

    _walk_links(f, "")
    layers = f.get("layers")
    if not isinstance(layers, h5py.Group):
        raise WeightsError("not a weights file of this layout: no group 'layers' (write it "
                           "with `specc import --weights`)")
    found: dict[str, list[Any]] = {}
    for name, group in layers.items():
        vars_ = group.get("vars") if isinstance(group, h5py.Group) else None
        if not isinstance(vars_, h5py.Group):
            raise WeightsError(f"layers/{name}: no group 'vars'")
        keys = sorted(vars_, key=lambda k: (len(k), k))
        if keys != [str(i) for i in range(len(keys))]:
            raise WeightsError(f"layers/{name}/vars: arrays must be named 0..{len(keys) - 1}")
        items = [vars_[k] for k in keys]
        for k, ds in zip(keys, items):
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "biuf" or \
                    ds.is_virtual or ds.external:
                raise WeightsError(f"layers/{name}/vars/{k}: not a plain numeric array")
        found[name] = items
    return found


def load_into(model: Any, path: str | os.PathLike) -> None:
    """Assign the file's arrays to the model's layers by name; WeightsError on any mismatch
    (nothing is assigned then)."""
    import h5py

    from specc.errors import did_you_mean

    with open(path, "rb") as fh:
        if fh.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise WeightsError("not a Keras weights file (no HDF5 signature)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(f"cannot be read as HDF5 ({exc})") from None
    with f:
        stored = _datasets(f)
        layers = {layer.name: layer for layer in owned_layers(model)}
        if FORMAT_ATTR not in f.attrs and stored and not set(stored) & set(layers):
            raise WeightsError(f"its layers are keyed {', '.join(list(stored)[:3])}, ..., not "
                               "by the spec's layer names (a file from Keras's save_weights "
                               "keys them by class); write it with `specc import --weights`")
        problems = []
        for name in stored:
            if name not in layers:
                problems.append(f"the file has weights for {name!r}, which is no layer with "
                                f"weights in the model{did_you_mean(name, layers)}")
        for name, layer in layers.items():
            if name not in stored:
                problems.append(f"layer {name!r} has weights, the file has none for it")
                continue
            want = [tuple(v.shape) for v in layer.weights]
            have = [tuple(ds.shape) for ds in stored[name]]
            if want != have:
                problems.append(f"layer {name!r} holds arrays of shapes "
                                f"{', '.join(map(_shape, want)) or 'none'}; the file has "
                                f"{', '.join(map(_shape, have)) or 'none'}")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise WeightsError("; ".join(problems[:3]) + more)
        for name, layer in layers.items():
            for variable, ds in zip(layer.weights, stored[name]):
                variable.assign(ds[()].astype(variable.dtype, copy=False))
            finalized(layer)


def finalized(layer: Any) -> None:
    """A layer that computes from a copy of its weights (a Normalization without statistics
    reads its mean and variance as constants made when it is built) takes the new ones:
    Keras's own loading calls finalize_state so."""
    finalize = getattr(layer, "finalize_state", None)
    if callable(finalize):
        finalize()
