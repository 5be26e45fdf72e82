"""One spec, one loss on every Keras backend, and data parallelism on JAX.

The backend is fixed per process, so each backend's half runs in a fresh interpreter with
KERAS_BACKEND set (tests/backend_check.py, tests/jax_parallel_check.py, the `specc` command).
JAX tests run when jax is installed (the `test` extra brings it), torch tests when torch is
(`pip install "specc-keras[torch]"`); the others skip.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import backend_check  # a helper module of tests/ (run as a script too)
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
HAS = {name: importlib.util.find_spec(name) is not None for name in ("jax", "torch")}
needs_jax = pytest.mark.skipif(not HAS["jax"], reason="jax is not installed")
OTHER_BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(not HAS[b], reason=f"no {b}"))
                  for b in ("jax", "torch")]
#: Every penalty kind and strategy (the kitchen sink), two inputs and two outputs.
CROSS_SPECS = ("kitchen_sink", "two_outputs")
#: The README's bounds: logged values across backends, weights after one SGD step.
LOGS_RTOL = 1e-5
WEIGHTS_RTOL = 1e-4


def _run(args: list[str], backend: str, timeout: int = 1800, **env: str
         ) -> subprocess.CompletedProcess:
    out = subprocess.run(args, env={**ENV, "KERAS_BACKEND": backend, **env}, cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)
    return out


def _python(script: str, *args: str, backend: str, **env: str) -> None:
    out = _run([sys.executable, str(HERE / script), *args], backend, **env)
    assert out.returncode == 0, out.stderr[-4000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the same loss on every backend ------------------------------------------------------------
@pytest.fixture(scope="module")
def tf_half(tmp_path_factory) -> Path:
    """TensorFlow: weights (.weights.h5), batches and results for the CROSS_SPECS."""
    work = tmp_path_factory.mktemp("backends")
    _python("backend_check.py", str(work), "write", *CROSS_SPECS, backend="tensorflow")
    return work


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_same_weights_and_batch_give_the_same_loss_terms_and_step(tf_half, backend) -> None:
    _python("backend_check.py", str(tf_half), "read", *CROSS_SPECS, backend=backend)
    worst = backend_check.compare(str(tf_half), backend)
    assert worst["logs"] <= LOGS_RTOL, worst        # loss, task_loss, every clause's term
    assert worst["weights"] <= WEIGHTS_RTOL, worst  # after one SGD step
    runs = {b: json.loads((tf_half / f"{b}.json").read_text()) for b in ("tensorflow", backend)}
    assert runs["tensorflow"].keys() == runs[backend].keys()
    assert len(runs[backend]) == len(CROSS_SPECS) * 4
    for name, run in runs.items():
        for case, result in run.items():
            # `predict` returns the declared outputs only (via: output adds tap outputs)
            assert result["predict"] == [[backend_check.B, *s] for s in result["declared"]], \
                (name, case)
            keys = set(result["evaluate"])
            assert {"loss", "task_loss", *result["terms"]} <= keys, (name, case)
            assert keys == set(runs["tensorflow"][case]["evaluate"]), (name, case)


JAX_SUITES = ("test_equivalence.py", "test_sequence_penalties.py", "test_schedules.py",
              "test_pair_penalties.py")


@needs_jax
def test_equivalence_suites_on_jax() -> None:
    """The suites with numpy and hand-written Keras references (every kind and strategy;
    masks, `axis`, ar/tar; scheduled rates and loss weights) under JAX: one pytest run in one
    process (-n 0) for them all, so JAX, Keras and specc are imported once."""
    out = _run([sys.executable, "-m", "pytest", "-v", "-n", "0", "-p", "no:cacheprovider",
                *(str(HERE / suite) for suite in JAX_SUITES)], "jax")
    assert out.returncode == 0, out.stdout[-4000:]
    assert re.search(r"\b\d+ passed\b", out.stdout), out.stdout[-2000:]
    passed = {line.split("::")[0] for line in out.stdout.splitlines() if " PASSED" in line}
    assert passed == {f"tests/{suite}" for suite in JAX_SUITES}, out.stdout[-2000:]


# -- golden files per backend --------------------------------------------------------------------
@needs_jax
def test_golden_files_on_jax(tmp_path) -> None:
    specs = [str(ROOT / "specs" / f"{s}.yaml") for s in ("decorrelation", "two_outputs")]
    out = _run(["specc", "golden", *specs, "--dir", str(ROOT / "tests" / "golden"),
                "--backend", "jax"], "tensorflow")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ok ") == 2
    # a spec with TensorFlow golden files only: on JAX there are none
    for name in ("decorrelation.yaml", "decorrelation.summary.txt",
                 "decorrelation.losses.json"):
        src = ROOT / ("specs" if name.endswith(".yaml") else "tests/golden") / name
        shutil.copy(src, tmp_path / name)
    out = _run(["specc", "golden", str(tmp_path / "decorrelation.yaml"), "--backend", "jax"],
               "tensorflow")
    assert out.returncode == 1
    assert "golden files missing for the jax backend" in out.stdout
    assert "decorrelation.jax.summary.txt" in out.stdout
    out = _run(["specc", "golden", str(tmp_path / "decorrelation.yaml")], "tensorflow")
    assert out.returncode == 0, out.stdout + out.stderr


# -- --backend -----------------------------------------------------------------------------------
def test_a_backend_that_is_not_installed_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    from specc import cli
    from specc.cli import backend

    monkeypatch.setattr(backend, "BACKENDS", {**backend.BACKENDS, "torch": "no_such_module_x"})
    spec = str(ROOT / "specs" / "question_mlp.yaml")
    assert cli.main(["build", spec, "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("specc: error: backend torch: the no_such_module_x package is not "
                          "installed")


def test_an_unknown_keras_backend_variable_is_refused() -> None:
    out = _run(["specc", "build", str(ROOT / "specs" / "question_mlp.yaml")], "theano")
    assert out.returncode == 2
    assert out.stderr.strip() == ("specc: error: KERAS_BACKEND=theano: not a backend specc "
                                  "runs on (choose from tensorflow, jax, torch)")
    assert out.stdout == ""


def test_another_backend_than_the_running_keras_is_refused(capsys) -> None:
    keras = pytest.importorskip("keras")
    from specc import cli

    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    assert cli.main(["build", str(ROOT / "specs" / "question_mlp.yaml"), "--backend",
                     other]) == 2
    assert f"Keras already runs on {keras.backend.backend()}" in capsys.readouterr().err


@needs_jax
def test_backend_flag_builds_and_fits_on_jax(tmp_path) -> None:
    spec = str(ROOT / "specs" / "two_outputs.yaml")
    out = _run(["specc", "fit", spec, "--backend", "jax", "--epochs", "1", "--samples", "64",
                "--out", str(tmp_path / "run")], "tensorflow")
    assert out.returncode == 0, out.stderr[-3000:]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert {"loss", "task_loss", "val_loss"} <= set(history)
    loaded = subprocess.run(
        [sys.executable, "-c", "import keras, specc; m = keras.saving.load_model("
         f"{str(tmp_path / 'run' / 'model.keras')!r}, safe_mode=True); "
         "print(keras.backend.backend(), type(m).__name__)"],
        env={**ENV, "KERAS_BACKEND": "jax"}, capture_output=True, text=True, timeout=900)
    assert loaded.stdout.split() == ["jax", "SpecModel"], loaded.stderr[-2000:]


@pytest.mark.parametrize("argv,message", [
    (["--strategy", "multi_worker"], "--strategy multi_worker is withdrawn"),
    (["--num-processes", "2"], "go with --strategy data_parallel"),
    (["--strategy", "data_parallel", "--coordinator", "127.0.0.1:1"],
     "give --coordinator, --num-processes and --process-id together"),
    (["--strategy", "data_parallel", "--coordinator", "127.0.0.1:1", "--num-processes", "2",
      "--process-id", "2"], "--process-id 2 of --num-processes 2: give 0 <= id < count"),
])
def test_fit_strategy_usage_errors(tmp_path, capsys, argv, message) -> None:
    pytest.importorskip("keras")
    from specc import cli

    out = tmp_path / "out"
    code = cli.main(["fit", str(ROOT / "specs" / "question_mlp.yaml"), "--out", str(out),
                     *argv])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_strategy_of_another_backend_is_refused(tmp_path, capsys) -> None:
    keras = pytest.importorskip("keras")
    from specc import cli

    wrong = "data_parallel" if keras.backend.backend() != "jax" else "mirrored"
    code = cli.main(["fit", str(ROOT / "specs" / "question_mlp.yaml"), "--out",
                     str(tmp_path / "o"), "--strategy", wrong])
    assert code == 2
    assert f"--strategy {wrong}" in capsys.readouterr().err


# -- data parallelism on JAX -------------------------------------------------------------------
def test_process_share_splits_every_global_batch() -> None:
    from specc.fit import process_share

    x = {"x": np.arange(22)}
    order = np.arange(22)[::-1]
    shares = [process_share((x, x), order, 8, p, 2)[0]["x"] for p in (0, 1)]
    # two whole global batches of 8 (the last 6 rows dropped); process p: slice p of each
    assert shares[0].tolist() == [21, 20, 19, 18, 13, 12, 11, 10]
    assert shares[1].tolist() == [17, 16, 15, 14, 9, 8, 7, 6]


def _compare_parallel(work: Path, mode: str) -> None:
    one = json.loads((work / "one.json").read_text())
    other = json.loads((work / f"{mode}.json").read_text())
    assert one.keys() == other.keys() and len(one) == 18       # 6 kinds x 3 strategies
    for case in one:
        for part in ("evaluate", "step"):
            assert set(one[case][part]) == {"loss", "task_loss", "p", "q", "w"}, case
            assert one[case][part].keys() == other[case][part].keys(), case
            for key, value in one[case][part].items():
                got = other[case][part][key]
                assert abs(got - value) <= 2e-6 * abs(value), (mode, case, part, key)
        for path, value in one[case]["weights"].items():
            np.testing.assert_allclose(other[case]["weights"][path], value, rtol=1e-6,
                                       atol=1e-7, err_msg=f"{mode} {case} {path}")
        assert one[case]["moved"] > 1e-4, case          # the step did change the weights


@pytest.fixture(scope="module")
def one_device(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("parallel")
    _python("jax_parallel_check.py", str(work), "one", backend="jax")
    return work


@needs_jax
def test_two_host_devices_equal_one_device(one_device) -> None:
    _python("jax_parallel_check.py", str(one_device), "devices", backend="jax",
            XLA_FLAGS="--xla_force_host_platform_device_count=2")
    _compare_parallel(one_device, "devices")


@needs_jax
def test_two_processes_equal_one_device(one_device) -> None:
    port = str(_free_port())
    args = [sys.executable, str(HERE / "jax_parallel_check.py"), str(one_device), "process",
            port]
    env = {**ENV, "KERAS_BACKEND": "jax"}
    procs = [subprocess.Popen([*args, str(i)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    outs = [p.communicate(timeout=1800) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    _compare_parallel(one_device, "process")


@needs_jax
def test_specc_fit_on_two_processes_equals_one_process(tmp_path) -> None:
    """The README's two commands, both on 127.0.0.1, against one process."""
    spec = str(ROOT / "specs" / "decorrelation.yaml")
    common = ["specc", "fit", spec, "--backend", "jax", "--strategy", "data_parallel",
              "--epochs", "2", "--samples", "320", "--batch-size", "32"]
    port = _free_port()
    procs = [subprocess.Popen(
        [*common, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
         "--process-id", str(i), "--out", str(tmp_path / f"p{i}")],
        env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in (0, 1)]
    outs = [p.communicate(timeout=1800) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    single = _run([*common, "--out", str(tmp_path / "one")], "tensorflow")
    assert single.returncode == 0, single.stderr[-3000:]
    runs = [json.loads((tmp_path / d / "history.json").read_text()) for d in ("one", "p0", "p1")]
    assert {"loss", "task_loss", "diversity", "sparse_code", "val_loss"} <= set(runs[0])
    # each clause's measure, train and validation, over the global data in every process
    # (batch statistics: decorrelation and kl_sparsity over each global batch)
    assert {"diversity_measure", "val_diversity_measure", "sparse_code_measure",
            "val_sparse_code_measure"} <= set(runs[0])
    for run in runs[1:]:
        assert set(run) == set(runs[0])
        for key, values in run.items():
            np.testing.assert_allclose(values, runs[0][key], rtol=1e-5, err_msg=key)
    # printed by process 0 only, as one process prints them (the values: in history above)

    def printed(text: str) -> list[str]:
        return [line.rsplit(" = ", 1)[0] for line in text.splitlines()
                if "without the rate" in line]
    said = [out for out, _ in outs]
    assert len(printed(single.stdout)) == 2 and printed(said[0]) == printed(single.stdout)
    assert printed(said[1]) == []


SCHEDULED_EVALUATE = """
import json, numpy as np, keras, specc
from test_schedules import KL_WARMUP, _kl
model = specc.build(specc.loads(KL_WARMUP, "k.yaml"))
rng = np.random.default_rng(0)
x = rng.normal(size=(8, 6)).astype("float32")
y = rng.normal(size=(8, 1)).astype("float32")
probe = keras.Model(model.inputs, model.get_layer("h").output)
a = keras.ops.convert_to_numpy(probe(x))
rows = []
for t in (0, 500, 2000):      # one traced test function, evaluated at three steps
    model.optimizer.iterations.assign(t)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    rows.append([logs["sparse"], min(t, 1000) * 1e-6 * _kl(a)])
print(json.dumps(rows))
"""


@needs_jax
def test_scheduled_rates_follow_the_step_in_evaluate_on_jax() -> None:
    """JAX bakes a variable read outside the step's state into the traced function: the
    rate must come from the state, or every evaluation would use the first trace's step."""
    out = _run([sys.executable, "-c", SCHEDULED_EVALUATE], "jax",
               PYTHONPATH=os.pathsep.join([str(HERE), ENV["PYTHONPATH"]]))
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert rows[0] == [0.0, 0.0]
    for got, expected in rows[1:]:
        assert expected > 0
        assert abs(got - expected) <= 1e-5 * expected, rows
