"""Benchmark: layers from plugins (specs/transformer), validated and built.

    python tests/benchmarks/bench_custom_layers.py            # 200 validations, 5 builds each
    python tests/benchmarks/bench_custom_layers.py -n 500 -r 9

(a) validate, in-process (`specc.load`): keras.io's transformer spec, whose two custom layers
    come from the plugin (argument models, shape rules and parameter counts in Python), against
    the same spec with those two layers replaced by catalog layers (Embedding and
    LayerNormalization: same names, same neighbours). Printed: median per spec, and plugin /
    catalog. The first call (imports, Pydantic's first validation) is left out.
(b) build, side by side: `specc.build` of the transformer spec against keras.io's model written
    by hand (the plugin's Keras classes), both compiled with Adam, sparse categorical
    cross-entropy and accuracy. The two alternate in each repeat; keras.backend.clear_session()
    and a garbage collection run between builds, outside the clock; one warm-up build of each
    is left out. Printed: median wall and CPU time, and specc / hand-written.
(c) the plugin's import: its time, and that it imports no Keras (it names its classes).

The machine may be shared: the load average is printed, and CPU time next to wall time.
No assertion on any time.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "specs" / "transformer"
SPEC = PLUGIN_DIR / "transformer_text.yaml"
sys.path.insert(0, str(PLUGIN_DIR))


def catalog_twin(text: str) -> str:
    """The spec with its two plugin layers replaced by catalog layers of the same names."""
    lines = []
    for line in text.splitlines():
        if "type: TokenAndPositionEmbedding" in line:
            line = ("  - {name: embedding, type: Embedding, input_dim: 20000, output_dim: 32}")
        elif "type: TransformerBlock" in line:
            line = "  - {name: transformer, type: LayerNormalization, epsilon: 1.0e-6}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def bench_validate(n: int) -> None:
    import specc

    text = SPEC.read_text()
    twin = catalog_twin(text)
    for t in (text, twin):
        specc.loads(t, "warm-up.yaml")
    times: dict[str, list[float]] = {"plugin": [], "catalog": []}
    for _ in range(n):
        for key, t in (("plugin", text), ("catalog", twin)):
            t0 = time.perf_counter()
            specc.loads(t, "t.yaml")
            times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"(a) validate, median of {n}: plugin layers {med['plugin'] * 1000:.3f} ms, "
          f"catalog twin {med['catalog'] * 1000:.3f} ms, ratio "
          f"{med['plugin'] / med['catalog']:.3f}")


def hand_model():
    import keras
    from keras import layers
    from transformer_layers_keras import TokenAndPositionEmbedding, TransformerBlock

    inputs = layers.Input(shape=(200,), dtype="int32")
    x = TokenAndPositionEmbedding(200, 20000, 32)(inputs)
    x = TransformerBlock(32, 2, 32)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def bench_build(repeats: int) -> None:
    import keras

    import specc

    def spec_model():
        return specc.build(SPEC)

    builders = {"specc": spec_model, "hand": hand_model}
    wall: dict[str, list[float]] = {k: [] for k in builders}
    cpu: dict[str, list[float]] = {k: [] for k in builders}
    for i in range(repeats + 1):
        for key, build in builders.items():
            keras.backend.clear_session()
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            build()
            if i:                                   # the first round is the warm-up
                wall[key].append(time.perf_counter() - t0)
                cpu[key].append(time.process_time() - c0)
    w = {k: statistics.median(v) for k, v in wall.items()}
    c = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"(b) build + compile, median of {repeats}: specc {w['specc']:.3f} s "
          f"(CPU {c['specc']:.3f}), hand-written {w['hand']:.3f} s (CPU {c['hand']:.3f}); "
          f"ratio {w['specc'] / w['hand']:.3f} wall, {c['specc'] / c['hand']:.3f} CPU")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="validations of each spec")
    parser.add_argument("-r", type=int, default=5, help="builds of each model")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    import specc  # noqa: F401
    t1 = time.perf_counter()
    import transformer_layers  # noqa: F401
    t2 = time.perf_counter()
    heavy = sorted(m for m in ("keras", "tensorflow") if m in sys.modules)
    print(f"(c) import specc {(t1 - t0) * 1000:.1f} ms, then the plugin "
          f"{(t2 - t1) * 1000:.1f} ms; Keras/TensorFlow imported: {heavy or 'none'}")
    bench_validate(args.n)
    bench_build(args.r)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
