"""Custom penalty kinds come from Python plugins; a spec can never make specc import or run code."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import penalties
from specc.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"

SPEC = """\
specc: 1
name: plugged
seed: 1
inputs:
  x: {shape: [6]}
layers:
  - {name: h, type: Dense, units: 4, activation: tanh}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
penalties:
  - {name: peak, layer: h, kind: max_abs, rate: 0.5}
"""


@pytest.fixture()
def plugin():
    sys.path.insert(0, str(PLUGINS))
    import specc_demo_plugin  # noqa: F401

    yield
    penalties.unregister_penalty("max_abs")
    sys.modules.pop("specc_demo_plugin", None)
    sys.path.remove(str(PLUGINS))


def test_unregistered_kind_lists_the_known_ones() -> None:
    with pytest.raises(SpecError) as err:
        specc.loads(SPEC, "p.yaml")
    assert err.value.code == "unknown-kind"
    assert "unknown penalty kind 'max_abs'" in err.value.message
    assert "l1, l2, l1_l2, mean_abs, kl_sparsity, decorrelation" in err.value.message


def test_plugin_params_are_validated(plugin) -> None:
    with pytest.raises(SpecError) as err:
        specc.loads(SPEC.replace("rate: 0.5", "rate: -2"), "p.yaml")
    assert err.value.line == 12


@pytest.mark.parametrize("via", specc.VIAS)
def test_plugin_term_matches_numpy(plugin, via: str) -> None:
    model = specc.build(specc.loads(SPEC, "p.yaml"), via=via)
    x = np.random.RandomState(0).randn(5, 6).astype("float32")
    y = np.zeros((5, 1), "float32")
    logs = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    kernel, bias = (w.numpy().astype("float64") for w in model.get_layer("h").weights)
    a = np.tanh(x.astype("float64") @ kernel + bias)
    assert logs["peak"] == pytest.approx(0.5 * np.abs(a).max(), rel=1e-5)
    assert logs["loss"] == pytest.approx(logs["task_loss"] + logs["peak"], rel=1e-6)


def test_cli_plugin_option(tmp_path: Path) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text(SPEC)
    env = {"PYTHONPATH": str(PLUGINS), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = [sys.executable, "-m", "specc", "validate", str(spec)]
    assert subprocess.run(run, env=env, capture_output=True).returncode == 1
    ok = subprocess.run([*run, "--plugin", "specc_demo_plugin"], env=env, capture_output=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run([*run, "--plugin", "no_such_plugin_module"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "cannot import" in bad.stderr


HOSTILE = [
    "specc: 1\nname: m\ninputs: {x: {shape: [2]}}\nlayers:\n  - {name: h, type: Lambda}\n",
    "specc: 1\nname: m\ninputs: {x: {shape: [2]}}\nlayers: [{name: h, type: 'keras.layers.Dense'}]\n",
    "specc: 1\nname: m\npenalties: [{name: p, layer: h, kind: os.system, rate: 1}]\n",
    "specc: 1\nname: m\npenalties: [{name: p, layer: h, kind: 'subprocess:run', rate: 1}]\n",
    "specc: 1\nname: m\noptimizer: {type: 'builtins.eval'}\nloss: 'os:system'\n",
    "specc: 1\nname: !!python/name:os.system\n",
    "specc: 1\nname: !!python/module:subprocess\n",
]


def test_no_spec_triggers_an_import_or_a_subprocess(monkeypatch) -> None:
    specc.loads((ROOT / "specs" / "mnist_cnn.yaml").read_text())   # warm the lazy imports
    penalties.lookup("warm-up-entry-points")
    from specc import custom_layers

    custom_layers.lookup("warm-up-entry-points")   # installed and specc's own layer types
    from specc import custom_losses

    for kind in custom_losses.KINDS:                # installed losses and metrics
        custom_losses.lookup(kind, "warm-up-entry-points")
    before = set(sys.modules)

    def refuse(*args, **kwargs):
        raise AssertionError("a spec started a subprocess")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    import os

    monkeypatch.setattr(os, "system", refuse)
    for text in HOSTILE:
        with pytest.raises(SpecError):
            specc.loads(text, "hostile.yaml")
    assert set(sys.modules) - before == set()


BROKEN_SITE = PLUGINS / "broken_site"   # a fake installed distribution whose plugin raises


def _with_broken_plugin(*args: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BROKEN_SITE), str(ROOT)])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT)


def test_a_broken_installed_plugin_is_one_clean_line(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(SPEC)                         # kind max_abs: no working plugin has it
    builtin = tmp_path / "builtin.yaml"
    builtin.write_text(SPEC.replace("kind: max_abs", "kind: l2"))
    run = _with_broken_plugin("-m", "specc", "validate", str(unknown))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (
        "specc: error: penalty kind 'max_abs' is unknown and the installed plugin 'broken' "
        "(entry point specc_broken_plugin of broken-plugin 0.1) cannot be imported "
        "(ZeroDivisionError: a bug in the plugin); fix or uninstall it\n")
    # a spec of built-in kinds never loads the plugins
    assert _with_broken_plugin("-m", "specc", "validate", str(builtin)).returncode == 0
    # the API: a UsageError (the environment is at fault), not the plugin's exception
    run = _with_broken_plugin("-c", f"""
import specc
from specc.errors import UsageError
from specc.penalties import PluginError
try:
    specc.load({str(unknown)!r})
except PluginError as exc:
    assert isinstance(exc, UsageError)
    print("PluginError")
""")
    assert run.stdout == "PluginError\n", run.stderr
