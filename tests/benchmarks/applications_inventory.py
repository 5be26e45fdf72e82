"""Inventory of the layer classes and arguments that `keras.applications` architectures use.

    python tests/benchmarks/applications_inventory.py            # all (~3 min CPU)
    python tests/benchmarks/applications_inventory.py ResNet50   # some; the others are kept

Builds every architecture in the installed `keras.applications` with `weights=None` and its
default input shape (the shape the architecture is written for: MobileNet's
`ZeroPadding2D(((0, 1), (0, 1)))` depends on it), and a few option VARIANTS that bring other
layers (pooling heads, MobileNetV3's minimalistic blocks), reads each layer's `get_config()` and
writes tests/golden/applications_inventory.json:

    {"keras": "3.15.1", "architectures": {"ResNet50": {
        "input_shape": [224, 224, 3],
        "layers": {"Conv2D": {"module": "keras.src.layers...", "count": 53,
                              "values": {"filters": [64, 128, ...], ...}}, ...},
        "containers": {}, "operations": {}}}}

`values` lists every distinct value an argument takes in that architecture (sorted by their
JSON text; the config minus `name`). The layers of a nested model (ConvNeXt's stem is a
`Sequential`) are counted as layers, the nested model under `containers`. `operations` counts
the `keras.ops` calls written on tensors between layers, with their operands (`x + 3.0` is
`Add(tensor, 3.0)`): graph nodes, but not layers. One line per (architecture, layer class).
tests/test_applications_catalog.py reads the file and checks it against the catalog without
building anything; it also rebuilds two small architectures to check the file is current.

The variables are created inside Keras's `StatelessScope`, which defers their initial values:
building ConvNeXtXLarge then costs about 9 s of CPU and no 1.4 GB of weights. Where that
private class is missing, the models are built normally (slower, same configs).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Final

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "tests" / "golden" / "applications_inventory.json"


#: Options that bring layers the defaults do not: entry name -> (constructor, arguments).
#: (ConvNeXt's StochasticDepth needs drop_path_rate, which only the private
#: keras.src.applications.convnext.ConvNeXt takes: no public constructor builds it.)
VARIANTS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "MobileNetV3Small(minimalistic=True)": ("MobileNetV3Small", {"minimalistic": True}),
    "MobileNet(include_top=False, pooling='max')": (
        "MobileNet", {"include_top": False, "pooling": "max"}),
    "ResNet50(include_top=False, pooling='avg')": (
        "ResNet50", {"include_top": False, "pooling": "avg"}),
    "EfficientNetV2B0(include_preprocessing=False)": (
        "EfficientNetV2B0", {"include_preprocessing": False}),
}


def architectures() -> list[str]:
    """The model constructors of the installed keras.applications (capitalized names)."""
    import keras

    return sorted(n for n in dir(keras.applications)
                  if n[:1].isupper() and callable(getattr(keras.applications, n)))


def jsonable(value: Any) -> Any:
    """Tuples become lists, numpy scalars and arrays plain numbers and lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    return value


def _deferred() -> Any:
    try:
        from keras.src.backend.common.stateless_scope import StatelessScope
    except ImportError:  # pragma: no cover - another Keras layout: build with weights
        return contextlib.nullcontext()
    return StatelessScope()


def _order(seen: dict[str, Any]) -> Any:
    """Numbers in numeric order, anything else by its JSON text."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen.values()):
        return lambda k: (seen[k], k)
    return lambda k: k


def _operation(op: Any) -> str:
    """`Add(tensor, 3.0)`: a raw `keras.ops` call, its tensor and constant operands."""
    from keras import KerasTensor

    def show(value: Any) -> str:
        return "tensor" if isinstance(value, KerasTensor) else repr(value)

    node = op._inbound_nodes[0]
    args = [show(a) for a in node.arguments.args]
    args += [f"{k}={show(v)}" for k, v in node.arguments.kwargs.items()]
    return f"{type(op).__name__}({', '.join(args)})"


def inventory(name: str) -> dict[str, Any]:
    """One architecture's (or VARIANTS entry's) layer classes, argument values, containers
    and raw operations."""
    import keras

    constructor, options = VARIANTS.get(name, (name, {}))
    keras.backend.clear_session()
    with _deferred():
        model = getattr(keras.applications, constructor)(weights=None, **options)
    layers: dict[str, dict[str, Any]] = {}
    containers: dict[str, int] = {}
    operations: dict[str, int] = {}

    def walk(ops: list[Any]) -> None:
        for op in ops:
            cls = type(op)
            if isinstance(op, keras.Model):         # a nested Sequential: its layers count
                containers[cls.__name__] = containers.get(cls.__name__, 0) + 1
                walk(op.layers)
                continue
            if not isinstance(op, keras.layers.Layer):
                key = _operation(op)
                operations[key] = operations.get(key, 0) + 1
                continue
            if cls.__name__ == "InputLayer":
                continue          # a spec's `inputs:`, not a layer
            config = jsonable({k: v for k, v in op.get_config().items() if k != "name"})
            entry = layers.setdefault(cls.__name__, {"module": cls.__module__, "count": 0,
                                                     "values": {}})
            entry["count"] += 1
            for arg, value in config.items():
                entry["values"].setdefault(arg, {})[json.dumps(value, sort_keys=True)] = value

    walk(model.operations)
    for entry in layers.values():
        entry["values"] = {arg: [seen[k] for k in sorted(seen, key=_order(seen))]
                           for arg, seen in sorted(entry["values"].items())}
    result = {"input_shape": jsonable(model.input_shape[1:]),
              "layers": dict(sorted(layers.items())),
              "containers": dict(sorted(containers.items())),
              "operations": dict(sorted(operations.items()))}
    del model
    gc.collect()
    return result


def dumps(data: dict[str, Any]) -> str:
    """JSON with one line per (architecture, layer class): small, and its diff reads well."""
    def line(value: Any) -> str:
        return json.dumps(value, sort_keys=False, separators=(",", ":"))

    out = ["{", f' "keras": {line(data["keras"])},',
           f' "generated_by": {line(data["generated_by"])},', ' "architectures": {']
    archs = list(data["architectures"].items())
    for i, (name, arch) in enumerate(archs):
        out.append(f"  {line(name)}: {{")
        out.append(f'   "input_shape": {line(arch["input_shape"])},')
        out.append('   "layers": {')
        items = list(arch["layers"].items())
        out += [f"    {line(cls)}: {line(entry)}{',' if j < len(items) - 1 else ''}"
                for j, (cls, entry) in enumerate(items)]
        out.append("   },")
        out.append(f'   "containers": {line(arch["containers"])},')
        out.append(f'   "operations": {line(arch["operations"])}')
        out.append("  }" + ("," if i < len(archs) - 1 else ""))
    out += [" }", "}"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="architectures (or VARIANTS entries) to "
                        "(re)build; default: all")
    parser.add_argument("-o", "--output", type=Path, default=INVENTORY)
    args = parser.parse_args(argv)

    import keras

    names = args.names or [*architectures(), *VARIANTS]
    unknown = sorted(set(names) - set(architectures()) - set(VARIANTS))
    if unknown:
        parser.error(f"not in keras.applications: {', '.join(unknown)}")
    old: dict[str, Any] = {}
    if args.names and args.output.exists():
        old = json.loads(args.output.read_text(encoding="utf-8"))["architectures"]
    found = dict(old)
    for name in names:
        t0, c0 = time.perf_counter(), time.process_time()
        found[name] = inventory(name)
        print(f"{name:20s} {sum(e['count'] for e in found[name]['layers'].values()):5d} layers"
              f"  {time.perf_counter() - t0:6.1f} s wall  {time.process_time() - c0:6.1f} s CPU",
              flush=True)
    data = {"keras": keras.__version__,
            "generated_by": "python tests/benchmarks/applications_inventory.py",
            "architectures": dict(sorted(found.items()))}
    args.output.write_text(dumps(data), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
