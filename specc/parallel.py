"""Many spec files checked at once: shared between this process and forked children, each
sending its diagnostics back through a pipe (specc.validation.validate_paths).
"""
from __future__ import annotations

import os
from typing import Callable, Final

from specc.errors import Diagnostic

#: Below this many files, worker processes cost more than they save.
PARALLEL_FROM: Final = 200


def _forked(paths: list[str], check: Callable[[str], list[Diagnostic]]) -> tuple[int, int]:
    """Check `paths` in a forked child that pickles its diagnostics into a pipe."""
    import pickle

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: check, send, leave at once
        code = 1
        try:
            os.close(read)
            with os.fdopen(write, "wb") as pipe:
                pickle.dump([d for p in paths for d in check(p)], pipe)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _collect(pid: int, read: int, paths: list[str],
             check: Callable[[str], list[Diagnostic]]) -> list[Diagnostic]:
    import pickle

    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status == 0:
        return pickle.loads(data)
    return [d for p in paths for d in check(p)]   # a worker died: check here instead


def check_files(paths: list[str], check: Callable[[str], list[Diagnostic]],
                jobs: int = 0) -> list[Diagnostic]:
    """`check` of every file, in file order.

    Many files are shared between this process and `jobs - 1` forked children (0: one job
    per core). The first file is checked before forking, so the children inherit the
    validators Pydantic builds on first use instead of each building them again; a plain
    fork and a pipe cost less than a multiprocessing pool, which matters at ~0.3 ms a file.
    """
    jobs = jobs or (os.cpu_count() or 1)
    if jobs < 2 or len(paths) < PARALLEL_FROM or not hasattr(os, "fork"):
        return [d for p in paths for d in check(p)]
    out = check(paths[0])
    rest = paths[1:]
    size = -(-len(rest) // jobs)
    chunks = [rest[i:i + size] for i in range(0, len(rest), size)]
    children = [(_forked(chunk, check), chunk) for chunk in chunks[1:]]
    out += [d for p in chunks[0] for d in check(p)]
    for (pid, read), chunk in children:
        out += _collect(pid, read, chunk, check)
    return out
