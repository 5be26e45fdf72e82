"""Print the shape of the ``specc`` package: its import graph, circles in it, and long code.

    python tests/benchmarks/structure_report.py [--max-lines 500] [--max-function 80]

Reads the sources with ``ast`` (nothing is imported). Reports, from the modules' top-level and
function-level ``import`` statements alike:

* every circle in the import graph (strongly connected components of more than one module);
* modules over ``--max-lines`` lines and functions over ``--max-function`` lines.

Exit status 0 always: this is a report for the redesign (issue 19), not a test.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "specc"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The specc modules a module imports (absolute or relative), wherever the import sits."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-lines", type=int, default=500)
    parser.add_argument("--max-function", type=int, default=80)
    args = parser.parse_args()

    files = sorted(ROOT.rglob("*.py"))
    trees = {module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in files}
    known = set(trees)
    graph = {name: imports_of(tree, name, path.name == "__init__.py", known)
             for name, (path, tree) in trees.items()}
    # A package's __init__ importing its own submodules is not a circle worth reporting.
    for name in graph:
        graph[name] = {t for t in graph[name] if not (t.startswith(name + ".") or name.startswith(t + "."))}

    lines = {name: len(path.read_text().splitlines()) for name, (path, _) in trees.items()}
    print(f"{len(files)} modules, {sum(lines.values())} lines, "
          f"{sum(len(v) for v in graph.values())} imports between them")
    found = circles(graph)
    print(f"\ncircles in the import graph: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    long_modules = sorted((n for n in lines if lines[n] > args.max_lines), key=lambda n: -lines[n])
    print(f"\nmodules over {args.max_lines} lines: {len(long_modules)}")
    for name in long_modules:
        print(f"  {lines[name]:5d}  {name}")
    long_functions = []
    for name, (path, tree) in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > args.max_function:
                    long_functions.append((length, f"{name}.{node.name}"))
    print(f"\nfunctions over {args.max_function} lines: {len(long_functions)}")
    for length, where in sorted(long_functions, reverse=True):
        print(f"  {length:5d}  {where}")


if __name__ == "__main__":
    main()
