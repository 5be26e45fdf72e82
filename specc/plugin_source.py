"""One-file plugins: a plugin module that registers a layer, loss, metric or penalty kind and
defines its Keras code in the same file, loaded for validation without importing Keras.

`load(name)` imports a configured plugin module (the project configuration's `plugins`,
`--plugin`, an installed entry point; never a module a spec names). A module whose top level
imports only the standard library, pydantic and specc is imported as usual. Any other module
is read from its source (`ast`) and run statement by statement, leaving out:

- its imports of other modules (keras, numpy, ...): those names are bound to a stand-in that
  says, when used, that the module is not imported at validation;
- every statement that uses such a name when it runs (a class `class Scale(keras.layers.Layer)`,
  a constant computed with numpy), and then every statement that uses a name those bound.
  A left-out class or function is bound to its name as "module:Name" (a `Deferred`), which
  specc's registrations take as a class named lazily: `@specc.register_layer(...)` above such
  a class registers "module:Scale", as does `specc.register_layer("Scale", Scale, ...)`.

Function bodies do not run when a module is imported, so a function whose body uses Keras
(a loss, a shape rule calling only plain Python) is kept. When a model is built or loaded,
`realize_all()` imports every module read this way for real: its registrations run again with
the real classes and functions, replacing the ones made from its source.
"""
from __future__ import annotations

import __future__
import ast
import importlib
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any, Final, Iterator

#: Top-level packages a one-file plugin may import at validation (besides the standard library).
LIGHT: Final = frozenset({"specc", "pydantic", "pydantic_core", "annotated_types",
                          "typing_extensions", "__future__"})
#: Modules read from their source (name -> file), not yet imported for real.
_LIGHT_MODULES: dict[str, str] = {}


class Deferred(str):
    """A class or function of a one-file plugin, left out at validation: "module:Name".

    `params`: for a class, the arguments of the `__init__` written in it, read from the
    source: (name, annotation, default or inspect.Parameter.empty), the annotation and
    default evaluated without the left-out names; None where they cannot be (a registration
    then needs `args=`), with `why` saying why."""

    params: Any = None
    why: str = ""


class Unavailable:
    """A name a one-file plugin imports from a module that is not imported at validation."""

    def __init__(self, name: str, module: str, plugin: str) -> None:
        self._why = (f"{name!r} (from {module}) is not available while specc validates: the "
                     f"plugin {plugin} is read from its source without importing {module}; "
                     "use it inside a function that runs when the model is built")

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise RuntimeError(self._why)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(self._why)

    def __repr__(self) -> str:
        return f"<unavailable at validation: {self._why.split(' ', 1)[0]}>"


def _is_light(module: str | None, level: int = 0) -> bool:
    if level or not module:
        return False                  # a relative import: the plugin's package, not read here
    top = module.split(".")[0]
    return top in LIGHT or top in getattr(sys, "stdlib_module_names", ())


def is_light(name: str) -> bool:
    """Whether `name` was read from its source and is not imported for real yet."""
    return name in _LIGHT_MODULES


def load(name: str) -> None:
    """Import a plugin module, reading it from its source when its top level imports anything
    but the standard library, pydantic and specc. ImportError when it cannot be found or
    read; what it raises itself propagates, as an import would."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    if not (isinstance(spec.loader, importlib.machinery.SourceFileLoader) and spec.origin):
        importlib.import_module(name)
        return
    with open(spec.origin, "rb") as handle:
        source = handle.read()
    try:
        tree = ast.parse(source, spec.origin)
    except SyntaxError:
        importlib.import_module(name)           # Python reports it, as for any import
        return
    if not any(_heavy_imports(stmt) for stmt in tree.body):
        importlib.import_module(name)
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _LIGHT_MODULES[name] = spec.origin
    try:
        _run_light(module, tree, spec.origin)
    except BaseException:
        sys.modules.pop(name, None)
        _LIGHT_MODULES.pop(name, None)
        raise


def realize(name: str) -> None:
    """Import a module read from its source for real (its registrations run again)."""
    if _LIGHT_MODULES.pop(name, None) is None:
        return
    light = sys.modules.pop(name, None)
    try:
        importlib.import_module(name)
    except BaseException:
        if light is not None:                  # keep what validation had
            sys.modules[name] = light
        raise


def realize_all() -> None:
    """Import every module read from its source (a model is about to be built or loaded)."""
    for name in list(_LIGHT_MODULES):
        realize(name)


def forget(name: str) -> None:
    """Forget a module read from its source (specc.config.plugins_imported's clean-up)."""
    if _LIGHT_MODULES.pop(name, None) is not None:
        sys.modules.pop(name, None)


# -- reading the source -------------------------------------------------------------------

def _heavy_imports(node: ast.AST) -> list[ast.AST]:
    """The imports of modules outside LIGHT in a statement (not inside functions)."""
    found = []
    for sub in _walk(node):
        if isinstance(sub, ast.Import):
            if not all(_is_light(a.name) for a in sub.names):
                found.append(sub)
        elif isinstance(sub, ast.ImportFrom) and not _is_light(sub.module, sub.level):
            found.append(sub)
    return found


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a statement that run when it runs: function and lambda bodies left out
    (their decorators, defaults and annotations kept)."""
    yield node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        children: list[Any] = [*node.decorator_list, node.args, node.returns]
    elif isinstance(node, ast.Lambda):
        children = [node.args]
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        if child is not None:
            yield from _walk(child)


def _reads(node: ast.AST, lazy_annotations: bool) -> set[str]:
    """The names a statement reads when it runs (under `from __future__ import annotations`,
    annotations are strings: not read)."""
    skip: set[int] = set()
    if lazy_annotations:
        for sub in _walk(node):
            if isinstance(sub, (ast.arg, ast.AnnAssign)):
                annotation = sub.annotation
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                annotation = sub.returns
            else:
                continue
            if annotation is not None:
                skip.update(id(n) for n in ast.walk(annotation))
    return {sub.id for sub in _walk(node) if isinstance(sub, ast.Name)
            and isinstance(sub.ctx, ast.Load) and id(sub) not in skip}


def _binds(node: ast.AST) -> set[str]:
    """The names a top-level statement binds (not inside functions or classes)."""
    names = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    stack = [node]
    while stack:
        sub = stack.pop()
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(sub.name)
            continue
        if isinstance(sub, ast.Lambda):
            continue
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            names.add(sub.id)
        elif isinstance(sub, ast.alias):
            names.add((sub.asname or sub.name).split(".")[0])
        elif isinstance(sub, (ast.ExceptHandler,)) and sub.name:
            names.add(sub.name)
        stack.extend(ast.iter_child_nodes(sub))
    return names


def _registration(expr: ast.AST, namespace: dict, tainted: set[str]) -> Any:
    """The specc registration function that `expr` (a call's function, a decorator's
    function) names, evaluated without touching a left-out name; None when it is not one."""
    import specc

    if isinstance(expr, ast.Call):
        expr = expr.func
    if _reads(expr, False) & tainted:
        return None
    try:
        found = eval(compile(ast.Expression(expr), "<plugin>", "eval"), namespace)
    except Exception:
        return None
    wanted = {specc.register_layer, specc.register_loss, specc.register_metric,
              specc.register_penalty}
    return found if any(found is w for w in wanted) else None


def _run_light(module: types.ModuleType, tree: ast.Module, file: str) -> None:
    namespace = module.__dict__
    name = module.__name__
    flags = 0
    if any(isinstance(s, ast.ImportFrom) and s.module == "__future__"
           and any(a.name == "annotations" for a in s.names) for s in tree.body):
        flags = __future__.annotations.compiler_flag
    lazy = bool(flags)
    tainted: set[str] = set()       # bound by a left-out statement (imports included)
    deferred: set[str] = set()      # left-out classes and functions: bound to "module:Name"

    def run(stmt: ast.stmt) -> None:
        code = compile(ast.Module([stmt], type_ignores=[]), file, "exec", flags=flags,
                       dont_inherit=True)
        exec(code, namespace)

    for stmt in tree.body:
        heavy = _heavy_imports(stmt)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and heavy:
            for alias in stmt.names:
                bound = (alias.asname or alias.name).split(".")[0]
                source = stmt.module if isinstance(stmt, ast.ImportFrom) else alias.name
                namespace[bound] = Unavailable(bound, source or "a relative import", name)
                tainted.add(bound)
            continue
        reads = _reads(stmt, lazy)
        blocked = reads & tainted
        if not heavy and not blocked:
            run(stmt)
            continue
        if not heavy and not (blocked - deferred) and _is_registration_call(stmt, namespace,
                                                                           tainted - deferred):
            run(stmt)                   # specc.register_layer("Scale", Scale, ...): "mod:Scale"
            continue
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            value: Any = Deferred(f"{name}:{stmt.name}")
            if isinstance(stmt, ast.ClassDef):
                try:
                    value.params = _init_params(stmt, namespace, file, flags)
                except _NoParams as exc:
                    value.why = str(exc)
            for decorator in reversed(stmt.decorator_list):
                register = _registration(decorator, namespace, tainted - deferred)
                if register is None:
                    continue
                if isinstance(decorator, ast.Call):
                    # the decorator's own arguments must be there at validation
                    if _reads(decorator, lazy) & (tainted - deferred):
                        continue
                    factory = eval(compile(ast.Expression(decorator), file, "eval",
                                           flags=flags, dont_inherit=True), namespace)
                    result = factory(value)
                else:
                    result = register(value)
                value = result if isinstance(result, Deferred) else value
            namespace[stmt.name] = value
            tainted.add(stmt.name)
            deferred.add(stmt.name)
            continue
        for bound in _binds(stmt):
            namespace[bound] = Unavailable(bound, "a statement left out", name)
            tainted.add(bound)


def _is_registration_call(stmt: ast.stmt, namespace: dict, tainted: set[str]) -> bool:
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
    return isinstance(value, ast.Call) and _registration(value, namespace, tainted) is not None


class _NoParams(Exception):
    pass


def _init_params(cls: ast.ClassDef, namespace: dict, file: str, flags: int) -> list[tuple]:
    """The arguments of the `__init__` written in a class (none when it has none), from its
    source: annotations and defaults evaluated in the module as read so far."""
    import inspect

    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef)
                 and n.name == "__init__"), None)
    if init is None:
        return []
    a = init.args
    positional = [*a.posonlyargs, *a.args][1:]                    # self left out
    defaults: list[Any] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    pairs = [*zip(positional, defaults), *zip(a.kwonlyargs, a.kw_defaults)]

    def value(node: ast.AST, what: str) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and what == "annotation":
            node = ast.parse(node.value, mode="eval").body        # a string annotation
        try:
            return eval(compile(ast.Expression(node), file, "eval", flags=flags,
                                dont_inherit=True), namespace)
        except Exception as exc:
            raise _NoParams(f"the {what} of argument {arg.arg!r} of {cls.name}.__init__ "
                            f"({ast.unparse(node)}) cannot be evaluated without importing "
                            f"Keras ({type(exc).__name__}: {exc})") from None

    out = []
    for arg, default in pairs:
        if arg.annotation is None:
            out.append((arg.arg, None, inspect.Parameter.empty if default is None
                        else value(default, "default")))
            continue
        out.append((arg.arg, value(arg.annotation, "annotation"),
                    inspect.Parameter.empty if default is None else value(default, "default")))
    return out


def load_entry_points(group: str, broken: list[str]) -> list[str]:
    """Import the plugins installed under an entry-point group (specc.layers, specc.losses,
    specc.metrics): one naming a module is loaded as `load` loads one (a one-file plugin
    without Keras); `module:attr` is imported. specc.penalties.load_entry_points does the rest
    (a failure remembered in `broken`, one line each; the others still load)."""
    from specc.penalties import load_entry_points as load_each

    return load_each(group, broken, lambda ep: ep.load() if ep.attr else load(ep.module))


def declared_arguments(target: Any, skip: int, where: str) -> tuple[list[tuple], str]:
    """A plugin object's arguments as (name, annotation or None, default) and the name to
    show: for a one-file plugin's `"module:Class"` string, those read from its source; for a
    class, its `__init__`'s; for a function, its own. `skip`: the leading parameters that are
    not arguments (self; y_true, y_pred)."""
    if isinstance(target, str):
        return list(getattr(target, "params", None) or []), target.partition(":")[2]
    import inspect
    import typing

    function = target.__init__ if inspect.isclass(target) else target
    shown = f"{target.__qualname__}.__init__" if inspect.isclass(target) else \
        target.__qualname__
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:              # an annotation that does not resolve
        raise ValueError(f"{where}: cannot read the annotations of {shown} ({exc}); give "
                         "args=") from None
    params = [(p.name, hints.get(p.name), p.default)
              for p in list(inspect.signature(function).parameters.values())[skip:]
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return params, shown
