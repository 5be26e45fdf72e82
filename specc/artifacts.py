"""Files specc writes: always through a temporary file and an atomic rename.

A failed or interrupted (Ctrl-C, SIGTERM) write leaves no partial file and keeps the previous
one; specc never writes over a spec it was given. An output that is a symbolic link is written
through: the file it points to is replaced, the link stays. Temporary files and folders carry
the writing process's id (`.NAME.specc-PID-XXXXXXXX.tmp.EXT`, `.specc-fit-PID-XXXXXXXX/`); what
a killed process (SIGKILL) left behind is removed by the next write to that folder once that
process is gone. Nothing else is ever deleted.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Final, Iterable, Iterator

#: Temporary names: `tempfile` adds 8 characters from [a-z0-9_].
TMP_TAG: Final = ".specc-"
WORK_PREFIX: Final = ".specc-fit-"
_STALE_FILE: Final = re.compile(r"^\..+\.specc-(\d+)-[a-z0-9_]{8}\.tmp(\.[^./]*)?$")
_STALE_DIR: Final = re.compile(r"^\.specc-fit-(\d+)-[a-z0-9_]{8}$")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while specc was writing: unwound like Ctrl-C, so nothing is left."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def cleanup_on_sigterm() -> Iterator[None]:
    """While inside, SIGTERM raises Terminated (a KeyboardInterrupt) so that the writes in
    progress are removed as for Ctrl-C. Only in the main thread, and only where SIGTERM has
    its default action (a handler someone else installed is left alone)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _gone(pid: int, since: float) -> bool:
    """Whether process `pid` can no longer be writing a file last changed at `since`: it does
    not exist, or (its id reused) it started after that. Unsure means no."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:           # it exists (another user's): fall through to its start time
        pass
    started = _start_time(pid)
    return started is not None and started > since + 2.0   # btime is whole seconds


def _start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from Linux's /proc; else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        with open("/proc/stat", "rb") as f:
            boot = next(float(line.split()[1]) for line in f.read().decode().splitlines()
                        if line.startswith("btime "))
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])   # field 22: starttime
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def clean_stale(folder: str | os.PathLike) -> list[str]:
    """Remove what killed specc processes left in `folder`: only entries named by specc's own
    temporary patterns, of the right type (a file, a folder; never a link), whose process is
    gone. Returns the names removed; an entry that cannot be checked or removed is kept."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        file_match = _STALE_FILE.match(entry.name)
        dir_match = _STALE_DIR.match(entry.name)
        if not (file_match or dir_match):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if entry.is_symlink():
                continue
            if file_match and entry.is_file(follow_symlinks=False):
                if _gone(int(file_match.group(1)), st.st_mtime):
                    os.unlink(entry.path)
                    removed.append(entry.name)
            elif dir_match and entry.is_dir(follow_symlinks=False):
                if _gone(int(dir_match.group(1)), st.st_mtime):
                    shutil.rmtree(entry.path)
                    removed.append(entry.name)
        except OSError:
            continue
    return removed


def check_output_path(output: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                      suffix: str | None = ".keras") -> None:
    """Refuse, before any work, outputs that would overwrite an input, that Keras cannot
    write, or that are in a folder specc cannot write to."""
    from specc.errors import UsageError

    out = Path(output)
    if suffix and out.suffix != suffix:
        raise UsageError(f"{output}: the model file must end in {suffix}")
    if out.is_dir():
        raise UsageError(f"{output}: is a folder")
    real = out.resolve()
    link = f" (a link to {real})" if out.is_symlink() else ""
    if not real.parent.is_dir():
        raise UsageError(f"{output}{link}: folder {str(real.parent)!r} does not exist")
    if real.is_dir():
        raise UsageError(f"{output}{link}: is a folder")
    for src in inputs:
        if real == Path(src).resolve():
            raise UsageError(f"{output}: refusing to overwrite the input spec")
    check_writable(real.parent, f"{output}{link}")


def check_writable(folder: str | os.PathLike, shown: str) -> None:
    """Create and remove a probe file in `folder`: a read-only folder or filesystem is found
    now, not after the build. UsageError names it."""
    from specc.errors import UsageError

    try:
        fd, probe = tempfile.mkstemp(prefix=f".specc-probe-{os.getpid()}-", dir=folder)
    except OSError as exc:
        raise UsageError(f"{shown}: cannot write in folder {str(folder)!r} "
                         f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def write_with(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path` (beside the file it links to, if it
    is a symbolic link), then rename it into place."""
    target = Path(path).resolve()
    clean_stale(target.parent)
    with cleanup_on_sigterm():
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}{TMP_TAG}{os.getpid()}-",
                                   suffix=".tmp" + target.suffix, dir=target.parent)
        try:
            os.close(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; a written file gets the usual mode
            write(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    write_with(path, write)


def save_model(model: Any, path: str | os.PathLike) -> None:
    """`model.save` to a temporary .keras file, then rename it into place (a deep model is
    saved with room for Keras's recursion: specc.runtime.deep)."""
    from specc.runtime.deep import deep_call, model_depth

    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)   # so that loading restores its slots
    write_with(path, lambda tmp: deep_call(model.save, tmp, layers=model_depth(model)))
