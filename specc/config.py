"""Project configuration: `[tool.specc]` in the nearest pyproject.toml, and the options a
command runs with (that configuration, then the command line's flags over it).

    [tool.specc]
    plugins = ["transformer_layers"]          # imported before any spec is read
    plugin_paths = ["specs/transformer"]      # where they live, relative to this file
    max_params = "250M"                       # the size budget (--max-params overrides it)
    max_activation = 100_000_000              # (--max-activation)
    golden_dir = "tests/golden"               # specc golden's folder (--dir overrides it)
    strict = true                             # warnings fail `specc validate` (--no-strict)
    backend = "jax"                           # Keras backend (--backend, then KERAS_BACKEND)

The file is found as pytest, mypy and ruff find theirs: walking up from the folder of the
specs a command reads (the current folder for `specc schema`), the first pyproject.toml that
has a [tool.specc] table; a pyproject.toml without one is passed over. An unknown key or a
value of the wrong kind is a located error (`pyproject.toml:LINE:COL: error: ...`).

Reading it imports neither Keras nor NumPy: `tomllib` (Python 3.11+) or `tomli` on 3.10 (a
dependency there).
"""
from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Iterable, Iterator, Sequence

from specc.errors import Diagnostic, Span, SpecError, did_you_mean, quote

#: The keys of [tool.specc] and what each holds (for messages).
KEYS: Final = {
    "plugins": "a list of module names or .py files",
    "plugin_paths": "a list of folders, relative to pyproject.toml",
    "max_params": "a count (an integer, or a string such as \"250M\")",
    "max_activation": "a count (an integer, or a string such as \"100M\")",
    "golden_dir": "a folder, relative to pyproject.toml",
    "strict": "true or false",
    "backend": "one of tensorflow, jax, torch",
}
BACKENDS: Final = ("tensorflow", "jax", "torch")


@dataclass(frozen=True)
class Options:
    """What a command runs with: the project configuration, then the flags over it.

    The configuration's paths are made absolute (they are written relative to its
    pyproject.toml); a flag's are as given. `source` is
    that file, or None when no pyproject.toml with a [tool.specc] table was found.
    """

    source: Path | None = None
    plugins: tuple[str, ...] = ()
    plugin_paths: tuple[Path, ...] = ()
    max_params: int | None = None
    max_activation: int | None = None
    golden_dir: Path | None = None
    strict: bool = False
    backend: str | None = None
    verbose: bool = False
    #: The plugins named in the file (the rest came from --plugin).
    configured_plugins: tuple[str, ...] = ()
    #: `--set PATH=VALUE` (specc.overrides.Override), applied to every spec the command reads.
    overrides: tuple[Any, ...] = ()

    @property
    def limits(self) -> Any:
        """The size budget (specc.budget.Limits): the configured or flagged counts, else
        specc's defaults."""
        from specc.budget import Limits

        default = Limits()
        return Limits(default.max_params if self.max_params is None else self.max_params,
                      default.max_activation if self.max_activation is None
                      else self.max_activation)

    def with_flags(self, **flags: Any) -> Options:
        """These options with each flag that was given (not None) over the configured value;
        `plugins` and `plugin_paths` given on the command line are added to the configured
        ones."""
        given = {k: v for k, v in flags.items() if v is not None}
        for key in ("plugins", "plugin_paths"):
            if key in given:
                given[key] = (*getattr(self, key), *given[key])
        return replace(self, **given)


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:                                  # Python 3.10: tomli (a dependency there)
        import tomli
    except ImportError:                   # pragma: no cover - an install without its deps
        raise SpecError([Diagnostic(Span("pyproject.toml"), "reading [tool.specc] on Python "
                                    "3.10 needs the tomli package: pip install tomli",
                                    "config")]) from None
    return tomli


def find(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest pyproject.toml with a [tool.specc] table, from `start` (a folder or a file;
    default: the current folder) up to the file system's root; None when there is none."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        # cheap test first: most pyproject.toml files do not mention specc at all
        if "specc" in text and _table(_parse(candidate, text)) is not None:
            return candidate
    return None


def start_of(paths: Iterable[str | os.PathLike]) -> Path:
    """Where the search for the configuration starts: the common folder of the paths a
    command reads (as pytest's rootdir), else the current folder."""
    folders = [Path(p).resolve() for p in paths]
    folders = [p if p.is_dir() else p.parent for p in folders]
    if not folders:
        return Path.cwd()
    return Path(os.path.commonpath([str(f) for f in folders]))


def _shown(path: Path) -> str:
    """The file as messages name it: relative to the current folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _parse(path: Path, text: str) -> dict[str, Any]:
    toml = _toml()
    try:
        return toml.loads(text)
    except toml.TOMLDecodeError as exc:
        # "... (at line 3, column 7)": keep the position as a location
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc)) or "invalid TOML"
        raise SpecError([Diagnostic(Span(_shown(path), line, col), f"not valid TOML: {message}",
                                    "config")]) from None


def _table(data: dict[str, Any]) -> Any:
    tool = data.get("tool")
    return tool.get("specc") if isinstance(tool, dict) else None


def _where(text: str, key: str | None) -> tuple[int, int]:
    """(line, column) of `key` inside the [tool.specc] table (of the table's header when
    `key` is None or cannot be found; (1, 1) without a header)."""
    lines = text.splitlines()
    header = None
    for i, line in enumerate(lines):
        if re.match(r"\s*\[\s*tool\s*\.\s*specc\s*\]", line):
            header = i
            break
    if header is None:                    # `tool.specc.key = ...` or `specc = {...}` in [tool]
        if key is not None:
            for i, line in enumerate(lines):
                m = re.search(rf"(?<![\w-])[\"']?{re.escape(key)}[\"']?\s*=", line)
                if m and "specc" in "".join(lines[max(0, i - 50):i + 1]):
                    return i + 1, m.start() + 1
        return 1, 1
    if key is not None:
        for i in range(header + 1, len(lines)):
            line = lines[i]
            if re.match(r"\s*\[", line):           # the next table
                break
            m = re.match(rf"(\s*)[\"']?{re.escape(key)}[\"']?\s*[=.]", line)
            if m:
                return i + 1, len(m.group(1)) + 1
    col = len(lines[header]) - len(lines[header].lstrip()) + 1
    return header + 1, col


def _count(value: Any) -> int:
    from specc.budget import parse_count

    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError
    if isinstance(value, int):
        if value < 1:
            raise ValueError
        return value
    try:
        return parse_count(value)
    except Exception:                      # argparse.ArgumentTypeError: not a count
        raise ValueError from None


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError
    return tuple(value)


def read(path: str | os.PathLike) -> Options:
    """The options of one pyproject.toml's [tool.specc] table (every problem at once)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    table = _table(_parse(path, text))
    if table is None:
        return Options(source=path)
    shown = _shown(path)
    if not isinstance(table, dict):
        line, col = _where(text, None)
        raise SpecError([Diagnostic(Span(shown, line, col), "[tool.specc] must be a table",
                                    "config")])
    base = path.parent.resolve()
    problems: list[Diagnostic] = []
    values: dict[str, Any] = {}
    for key, value in table.items():
        line, col = _where(text, key)
        if key not in KEYS:
            problems.append(Diagnostic(
                Span(shown, line, col), f"unknown key {quote(key)} in [tool.specc]"
                f"{did_you_mean(key, KEYS)} (known: {', '.join(KEYS)})", "unknown-key"))
            continue
        try:
            if key == "plugins":       # a module name, or a file relative to this one
                values[key] = tuple(str((base / p).resolve()) if p.endswith(".py") else p
                                    for p in _strings(value))
            elif key == "plugin_paths":
                values[key] = tuple((base / p).resolve() for p in _strings(value))
            elif key in ("max_params", "max_activation"):
                values[key] = _count(value)
            elif key == "golden_dir":
                if not isinstance(value, str) or not value:
                    raise ValueError
                values[key] = (base / value).resolve()
            elif key == "strict":
                if not isinstance(value, bool):
                    raise ValueError
                values[key] = value
            elif key == "backend":
                if value not in BACKENDS:
                    raise ValueError
                values[key] = value
        except ValueError:
            problems.append(Diagnostic(
                Span(shown, line, col), f"[tool.specc] {key}: expected {KEYS[key]}, got "
                f"{quote(value) if isinstance(value, str) else type(value).__name__}",
                "bad-type"))
    if problems:
        raise SpecError(problems)
    return Options(source=path, configured_plugins=values.get("plugins", ()), **values)


def load(paths: Sequence[str | os.PathLike] = (), *, config: str | os.PathLike | None = None,
         isolated: bool = False) -> Options:
    """The configured options for a command reading `paths`: `config` when given (a
    pyproject.toml), none with `isolated`, else the nearest pyproject.toml's [tool.specc]."""
    if isolated:
        return Options()
    if config is not None:
        return read(config)
    found = find(start_of(paths))
    return read(found) if found is not None else Options()


@contextmanager
def plugins_imported(options: Options) -> Iterator[None]:
    """Inside the block, the plugins are imported (their folders first on sys.path); after
    it, what they registered is unregistered and the modules this call imported are
    forgotten, so that `specc.cli.main` called twice in one process (a test suite, a
    notebook) leaves no project's plugins behind. A module that cannot be imported is a
    usage error naming where it was configured."""
    from specc import custom_layers, custom_losses, penalties, plugin_source
    from specc.errors import UsageError

    saved_path = list(sys.path)
    modules = []
    folders = list(options.plugin_paths)
    for entry in options.plugins:          # a .py file: its folder first, then its name
        if entry.endswith(".py"):
            folders.append(Path(entry).resolve().parent)
            modules.append((entry, Path(entry).stem))
        else:
            modules.append((entry, entry))
    for folder in reversed(folders):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    types, kinds = custom_layers.registered_names(), set(penalties._PLUGINS)
    objects = {k: custom_losses.registered_names(k) for k in custom_losses.KINDS}
    imported: list[str] = []
    added_types: frozenset[str] = frozenset()
    added_kinds: set[str] = set()
    added_objects: dict[str, frozenset[str]] = {}
    try:
        for entry, name in modules:
            fresh = name not in sys.modules
            try:
                if entry.endswith(".py") and not Path(entry).is_file():
                    raise ImportError(f"no file {entry}")
                plugin_source.load(name)   # a one-file plugin: read without Keras
            except ImportError as exc:
                configured = options.source is not None and entry in options.configured_plugins
                where = f"{options.source} [tool.specc] plugins" if configured else "--plugin"
                folders = (f"; looked first in {', '.join(map(str, options.plugin_paths))}"
                           if options.plugin_paths else "")
                raise UsageError(f"{where} {entry}: cannot import it ({exc}{folders})") \
                    from None
            if fresh:
                imported.append(name)
        added_types = custom_layers.registered_names() - types
        added_kinds = set(penalties._PLUGINS) - kinds
        added_objects = {k: custom_losses.registered_names(k) - objects[k]
                         for k in custom_losses.KINDS}
        yield
    finally:
        if imported:
            for t in added_types:
                custom_layers.unregister_layer(t)
            for k in added_kinds:
                penalties.unregister_penalty(k)
            for kind, names in added_objects.items():
                for n in names:
                    custom_losses.unregister(kind, n)
            for name in imported:
                plugin_source.forget(name)
                sys.modules.pop(name, None)
        sys.path[:] = saved_path
