"""Deep models (issue 10, "Depth"): Keras's functional graph code recurses once per layer, so
without specc.runtime.deep a chain of ~1,000 layers raises RecursionError at build and load.

- specc.runtime.deep.deep_call: shallow calls run as they are; deep ones run in a thread with
  a raised recursion limit (restored after), return its value or raise its exception, carry
  Keras's per-thread state both ways, and pass an interrupt of the caller on to the worker;
- a CHAIN-layer chain validates, builds, saves (specc's save_model), reloads with
  `specc.load_model(path, safe_mode=True)` and predicts the same;
- a 300-block residual DAG (format 2 `repeat`) builds, fits one step and golden-probes.

CI runs the chain at CHAIN = 3,000 layers (three times the depth that failed); the
10,000-layer chain is run by tests/benchmarks/bench_build.py --deep (or SPECC_DEEP_CHAIN=10000
here), which also reports the per-layer cost at 100, 1,000 and 10,000 layers.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

from specc.runtime import deep

pytestmark = pytest.mark.keras          # specc.runtime imports Keras

CHAIN = int(os.environ.get("SPECC_DEEP_CHAIN", "3000"))


# -- deep_call, without Keras models ----------------------------------------------------------
def _depth(n: int) -> int:
    return 0 if n == 0 else 1 + _depth(n - 1)


def test_shallow_call_runs_in_the_callers_thread() -> None:
    me = threading.current_thread()
    assert deep.deep_call(threading.current_thread, layers=deep.DEEP_LAYERS) is me


def test_deep_call_gives_room_and_restores_the_limits() -> None:
    limit, stack = sys.getrecursionlimit(), threading.stack_size()
    with pytest.raises(RecursionError):
        _depth(limit + 100)
    n = 20 * limit
    seen: dict[str, object] = {}

    def work() -> int:
        seen["thread"] = threading.current_thread()
        seen["limit"] = sys.getrecursionlimit()
        return _depth(n)

    assert deep.deep_call(work, layers=n) == n
    assert seen["thread"] is not threading.current_thread()
    assert seen["limit"] == deep.frames_for(n) > n
    assert (sys.getrecursionlimit(), threading.stack_size()) == (limit, stack)


def test_deep_call_raises_the_workers_exception_with_its_traceback() -> None:
    def fail(x: int) -> None:
        raise ValueError(f"bad {x}")

    limit = sys.getrecursionlimit()
    with pytest.raises(ValueError, match="bad 3") as info:
        deep.deep_call(fail, 3, layers=10_000)
    assert any(entry.name == "fail" for entry in info.traceback)
    with pytest.raises(KeyboardInterrupt):
        deep.deep_call(_raise, KeyboardInterrupt, layers=10_000)
    assert sys.getrecursionlimit() == limit


def _raise(kind: type[BaseException]) -> None:
    raise kind()


def test_an_interrupt_of_the_caller_reaches_the_worker() -> None:
    """Ctrl-C lands in the main thread (waiting in join): the worker gets KeyboardInterrupt,
    unwinds (its cleanup runs), and then the caller raises it."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs the main thread with Python's own Ctrl-C handler")
    unwound: list[str] = []

    def work() -> None:
        try:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
            unwound.append("not interrupted")
        except KeyboardInterrupt:
            unwound.append("interrupted")
            raise

    with pytest.raises(KeyboardInterrupt):
        deep.deep_call(work, layers=10_000)
    assert unwound == ["interrupted"]


def test_keras_state_goes_to_the_worker_and_back() -> None:
    pytest.importorskip("keras")
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("specc_test_in", 1)

    def work() -> object:
        global_state.set_global_attribute("specc_test_out", 2)
        return global_state.get_global_attribute("specc_test_in")

    try:
        assert deep.deep_call(work, layers=10_000) == 1
        assert global_state.get_global_attribute("specc_test_out") == 2
    finally:
        global_state.set_global_attribute("specc_test_in", None)
        global_state.set_global_attribute("specc_test_out", None)


def test_saved_layers_reads_the_count_without_keras(tmp_path) -> None:
    import json
    import zipfile

    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps({"config": {"layers": [{}] * 7}}))
    assert deep.saved_layers(path) == 7
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    assert deep.saved_layers(tmp_path / "bad.keras") == 0
    assert deep.saved_layers(tmp_path / "missing.keras") == 0


# -- deep specs, built with Keras -------------------------------------------------------------
def chain_text(n: int) -> str:
    """n layers: identity activations, with a Dense(2) every 100th layer (weights to reload;
    orthogonal kernels keep the values' size through the chain)."""
    lines = ["specc: 1", f"name: chain_{n}", "seed: 1", "inputs:", "  x: {shape: [2]}",
             "layers:"]
    for i in range(n):
        if i % 100 == 0:
            lines.append(f"  - {{name: l{i}, type: Dense, units: 2, "
                         "kernel_initializer: orthogonal}")
        else:
            lines.append(f"  - {{name: l{i}, type: Activation, activation: linear}}")
    lines += [f"outputs: [l{n - 1}]", "loss: mse", "optimizer: sgd", ""]
    return "\n".join(lines)


RESIDUAL = """\
specc: 2
name: residual_{n}
seed: 3
inputs:
  x: {{shape: [4]}}
blocks:
  res:
    layers:
      - {{name: dense, type: Dense, units: 4, activation: tanh}}
      - {{name: add, type: Add, from: [x, dense]}}
layers:
  - {{name: r, use: res, repeat: {n}}}
  - {{name: out, type: Dense, units: 2}}
outputs: [out]
loss: mse
optimizer: {{type: sgd, learning_rate: 1.0e-3}}
penalties:
  - {{name: mid, layer: r{mid}.dense, kind: l2, rate: 1.0e-3, at: pre_activation}}
"""


def test_deep_chain_builds_saves_and_reloads(tmp_path) -> None:
    keras = pytest.importorskip("keras")
    import specc
    from specc.artifacts import save_model
    from specc.runtime.summary import summary_text

    path = tmp_path / "chain.yaml"
    path.write_text(chain_text(CHAIN))
    spec = specc.load(path)
    assert len(spec.layers) == CHAIN
    model = specc.build(spec)
    assert len(model.layers) == CHAIN + 1
    x = np.random.RandomState(0).standard_normal((5, 2)).astype("float32")
    before = model.predict(x, verbose=0)
    summary = deep.deep_call(summary_text, model, layers=CHAIN)
    assert f"l{CHAIN - 1} (Activation)" in summary
    save_model(model, tmp_path / "chain.keras")
    keras.backend.clear_session()
    again = specc.load_model(tmp_path / "chain.keras", safe_mode=True)
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    # bit-identical on purpose: the same graph on the same weights in one process
    np.testing.assert_array_equal(again.predict(x, verbose=0), before)
    norms = np.linalg.norm(before, axis=1)        # the weights matter: rotations of x
    np.testing.assert_allclose(norms, np.linalg.norm(x, axis=1), rtol=1e-4)


def test_deep_residual_dag_builds_fits_and_probes(tmp_path) -> None:
    keras = pytest.importorskip("keras")
    import specc
    from specc.golden import probe

    n = 300
    path = tmp_path / "residual.yaml"
    path.write_text(RESIDUAL.format(n=n, mid=n // 2))
    model = specc.build(path)
    assert len(model.layers) > 2 * n
    x = np.random.RandomState(1).standard_normal((8, 4)).astype("float32")
    y = np.random.RandomState(2).standard_normal((8, 2)).astype("float32")
    history = deep.deep_call(model.fit, x, y, batch_size=8, epochs=1, verbose=0,
                             layers=len(model.layers))
    logs = history.history
    assert {"loss", "task_loss", "mid"} <= set(logs)
    assert np.isfinite(logs["loss"][0]) and logs["mid"][0] > 0
    keras.backend.clear_session()
    result = probe(path)
    assert result.values["mid"] > 0 and np.isfinite(result.values["loss"])
    assert f"r{n}.add (Add)" in result.summary
