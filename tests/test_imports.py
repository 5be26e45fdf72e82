"""What stays light: importing specc, validation (the pre-commit path), overrides, budgets and a
lazy layer plugin import no Keras, TensorFlow, JAX or PyTorch. Each case runs in a fresh
interpreter (as click's tests/test_imports.py does) and prints the forbidden modules it finds
in sys.modules: one parametrized test instead of a copy per feature."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import CONVNEXT_LAYERS, ROOT

HEAVY = ("keras", "tensorflow", "jax", "torch")
TRANSFORMER = ROOT / "specs" / "transformer"

BIG = """\
specc: 1
name: m
inputs: {x: {shape: [8]}}
layers:
  - {name: big, type: Dense, units: 1000000000}
  - {name: out, type: Dense, units: 2}
outputs: [out]
loss: mse
"""

#: case: (the code, the modules it may not import besides HEAVY). The code runs in the
#: repository root with specs/transformer on the path; `tmp` is a scratch folder.
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "import specc": ("import specc", ()),
    "import specc.golden": ("import specc.golden", ("numpy",)),
    "validate specs/ with the transformer plugin": (
        # the plugin names its Keras classes; they are imported at build, not here
        "from specc.cli import main\n"
        "assert main(['validate', 'specs', '--plugin', 'transformer_layers']) == 0", ()),
    "validate with --set": (
        "from specc.cli import main\n"
        "assert main(['validate', 'specs/mnist_cnn.yaml', '--set', 'seed=3']) == 0", ()),
    "validate a spec over budget": (
        f"import pathlib\nfrom specc.cli import main\n"
        f"path = pathlib.Path(tmp, 'big.yaml')\npath.write_text({BIG!r})\n"
        "assert main(['validate', str(path)]) == 1", ("numpy",)),
    "load a spec with a lazy layer plugin": (
        "import specc, transformer_layers\n"
        "specc.load('specs/transformer/transformer_text.yaml')", ("transformer_layers_keras",)),
    "the language server on the example specs": (
        # every feature module, and the transformer spec's plugin from [tool.specc]
        "import pathlib, pkgutil, importlib, specc.lsp\n"
        "for m in pkgutil.iter_modules(specc.lsp.__path__):\n"
        "    importlib.import_module(f'specc.lsp.{m.name}')\n"
        "from specc.lsp.workspace import Workspace\n"
        "w = Workspace()\n"
        "for p in sorted(pathlib.Path('specs').rglob('*.yaml')):\n"
        "    a = w.update(p.resolve().as_uri(), str(p.resolve()), p.read_text())\n"
        "    assert not [d for d in a.diagnostics if d.severity == 'error'], a.diagnostics\n"
        "w.shutdown()", ("transformer_layers_keras",)),
    "validate ConvNeXt's layers (no --plugin)": (
        f"import specc\nspecc.loads({CONVNEXT_LAYERS!r}, 'ok.yaml')", ()),
}


@pytest.mark.parametrize("case", CASES)
def test_stays_light(case: str, tmp_path) -> None:
    code, extra = CASES[case]
    forbidden = HEAVY + extra
    script = (f"tmp = {str(tmp_path)!r}\n{code}\nimport sys\n"
              f"print(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TRANSFORMER)])}
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[-1] == "[]", f"{case} imported {run.stdout.splitlines()[-1]}"
