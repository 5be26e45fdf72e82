"""Files specc writes: always through a temporary file and an atomic rename.

A failed or interrupted write leaves no partial file and keeps the previous one; specc never
writes over a spec it was given.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable


def check_output_path(output: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                      suffix: str | None = ".keras") -> None:
    """Refuse outputs that would overwrite an input, or that Keras cannot write."""
    from specc.errors import UsageError

    out = Path(output)
    if suffix and out.suffix != suffix:
        raise UsageError(f"{output}: the model file must end in {suffix}")
    if out.is_dir():
        raise UsageError(f"{output}: is a folder")
    if not out.resolve().parent.is_dir():
        raise UsageError(f"{output}: folder {str(out.parent)!r} does not exist")
    for src in inputs:
        if out.resolve() == Path(src).resolve():
            raise UsageError(f"{output}: refusing to overwrite the input spec")


def write_with(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix,
                               dir=target.resolve().parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; a written file gets the usual mode
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    write_with(path, write)


def save_model(model: Any, path: str | os.PathLike) -> None:
    """`model.save` to a temporary .keras file, then rename it into place."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)   # so that loading restores its slots
    write_with(path, lambda tmp: model.save(tmp))
