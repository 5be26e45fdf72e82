"""Project configuration ([tool.specc] in pyproject.toml), commands that refuse before Keras
starts, the validation-only install, and the small command-line manners (a closed pipe,
quiet backends, submodules as attributes)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from specc import config
from specc.cli import main
from specc.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("keras", "tensorflow", "jax", "torch")
#: A refusal imports none of these (NumPy included: it is the extra's, and costs time too).
REFUSAL_FREE = (*HEAVY, "numpy")
#: The environment of a subprocess: this checkout first, no TensorFlow log level set, no
#: KERAS_BACKEND, and (on purpose) nothing that puts specs/transformer on the path.
ENV = {**{k: v for k, v in os.environ.items()
          if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND", "PYTHONPATH")},
       "PYTHONPATH": str(ROOT)}
SPEC = ("specc: 1\nname: m\ninputs:\n  x: {shape: [4]}\nlayers:\n"
        "  - {name: h, type: Dense, units: 3}\noutputs: [h]\nloss: mse\n")


def _specc(*args: str, cwd: Path = ROOT, env: dict | None = None,
           timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specc", *args], cwd=cwd, env=env or ENV,
                          capture_output=True, text=True, timeout=timeout)


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'p'\n\n[tool.specc]\n" + textwrap.dedent(table))
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "m.yaml").write_text(SPEC)
    return tmp_path


# -- [tool.specc] ----------------------------------------------------------------------------
def test_the_nearest_pyproject_with_a_specc_table_is_found(tmp_path: Path) -> None:
    outer = _project(tmp_path, "max_params = 10\n")
    inner = tmp_path / "specs" / "sub"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[tool.ruff]\nline-length = 99\n")  # passed over
    assert config.find(inner) == outer / "pyproject.toml"
    assert config.find(inner / "x.yaml") == outer / "pyproject.toml"
    assert config.load([str(inner / "x.yaml")]).max_params == 10
    assert config.load([str(inner)], isolated=True) == config.Options()


def test_unknown_keys_and_bad_values_are_located_errors(tmp_path: Path, capsys) -> None:
    _project(tmp_path, """\
        plugins = ["a"]
        max_parms = 10
        strict = "yes"
          golden_dir = 3
        """)
    with pytest.raises(SpecError) as info:
        config.read(tmp_path / "pyproject.toml")
    got = [(d.line, d.column, d.code) for d in info.value.diagnostics]
    assert got == [(6, 1, "unknown-key"), (7, 1, "bad-type"), (8, 3, "bad-type")]
    assert "did you mean 'max_params'?" in info.value.diagnostics[0].message
    # every command reads it: a usage error (exit 2), file:line:col, no traceback
    assert main(["validate", str(tmp_path / "specs")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith(f"{tmp_path / 'pyproject.toml'}:6:1: error: "
                                          "unknown key 'max_parms' in [tool.specc]")
    assert "Traceback" not in err


def test_invalid_toml_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.specc]\nstrict = tru\n")
    with pytest.raises(SpecError) as info:
        config.read(tmp_path / "pyproject.toml")
    assert (info.value.line, info.value.code) == (2, "config")


def test_flags_override_the_configuration(tmp_path: Path, capsys) -> None:
    project = _project(tmp_path, "max_params = 10\nstrict = true\n")
    spec = str(project / "specs" / "m.yaml")
    assert main(["validate", spec]) == 1                     # 15 parameters > 10
    assert "[budget" in capsys.readouterr().out
    assert main(["validate", spec, "--max-params", "100"]) == 0
    assert main(["validate", spec, "--no-config"]) == 0
    capsys.readouterr()
    # strict: a warning fails, unless --no-strict
    warned = project / "specs" / "w.yaml"
    warned.write_text((ROOT / "specs" / "question_mlp.yaml").read_text())
    assert main(["validate", str(warned), "--max-params", "1G"]) == 1
    assert main(["validate", str(warned), "--max-params", "1G", "--no-strict"]) == 0


def test_plugins_and_their_folder_need_no_pythonpath(tmp_path: Path) -> None:
    project = _project(tmp_path, """\
        plugins = ["transformer_layers"]
        plugin_paths = ["plugins"]
        """)
    (project / "plugins").mkdir()
    for name in ("transformer_layers.py", "transformer_layers_keras.py"):
        (project / "plugins" / name).write_text(
            (ROOT / "specs" / "transformer" / name).read_text())
    text = (ROOT / "specs" / "transformer" / "transformer_text.yaml").read_text()
    (project / "specs" / "t.yaml").write_text(text)
    out = _specc("validate", "specs", cwd=project)
    assert (out.returncode, out.stderr) == (0, "2 spec files valid\n"), out.stderr + out.stdout
    schema = _specc("schema", cwd=project)      # the schema an editor should use here
    assert "TransformerBlock" in json.loads(schema.stdout)["$defs"]
    plain = _specc("schema", "--no-config", cwd=project)
    assert "TransformerBlock" not in json.loads(plain.stdout)["$defs"]
    (project / "pyproject.toml").write_text("[tool.specc]\nplugins = ['nowhere']\n")
    out = _specc("validate", "specs", cwd=project)
    assert out.returncode == 2
    assert out.stderr.startswith(f"specc: error: {project / 'pyproject.toml'} [tool.specc] "
                                 "plugins nowhere: cannot import it (No module named 'nowhere'")


def test_main_leaves_no_configured_plugin_behind(tmp_path: Path, capsys) -> None:
    from specc import custom_layers

    project = _project(tmp_path, 'plugins = ["transformer_layers"]\nplugin_paths = ["p"]\n')
    (project / "p").mkdir()
    (project / "p" / "transformer_layers.py").write_text(
        (ROOT / "specs" / "transformer" / "transformer_layers.py").read_text())
    (project / "specs" / "t.yaml").write_text(
        (ROOT / "specs" / "transformer" / "transformer_text.yaml").read_text())
    before = (custom_layers.registered_names(), list(sys.path))
    for _ in range(2):                      # the second call imports the plugin again
        assert main(["validate", str(project / "specs")]) == 0, capsys.readouterr().out
    assert (custom_layers.registered_names(), list(sys.path)) == before
    assert "transformer_layers" not in sys.modules


def test_golden_dir_comes_from_the_configuration(tmp_path: Path, capsys) -> None:
    project = _project(tmp_path, 'golden_dir = "gold"\n')
    # refused before Keras starts: the configured folder does not exist
    assert main(["golden", str(project / "specs" / "m.yaml")]) == 2
    err = capsys.readouterr().err
    assert err == f"specc: error: golden folder {project / 'gold'}: no such folder\n"


def test_this_repository_validates_with_no_flags() -> None:
    for args in (("validate", "specs/"), ("validate", "--format", "github", "specs/")):
        out = _specc(*args)
        assert out.returncode == 0, out.stdout + out.stderr
    assert not [line for line in out.stdout.splitlines() if line.startswith("::error")]


# -- refusals come before Keras ---------------------------------------------------------------
def _refusal(tmp_path: Path, argv: list[str], env: dict | None = None) -> dict:
    """Run main(argv) in a fresh interpreter: its exit code, what it printed, and which of
    the heavy modules it imported."""
    code = ("import json, sys\nfrom specc.cli import main\nrc = main(sys.argv[1:])\n"
            f"print(json.dumps({{'rc': rc, 'mods': [m for m in {REFUSAL_FREE!r} "
            "if m in sys.modules]}))")
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, env=env or ENV,
                         capture_output=True, text=True, timeout=600)
    *printed, last = out.stdout.splitlines()
    return {**json.loads(last), "out": "\n".join(printed), "err": out.stderr}


BAD = "specc: 1\nname: m\ninputs:\n  x: {shape: [4]}\nlayers:\n  - {name: h, type: Dense}\n" \
      "outputs: [h]\nloss: mse\n"


@pytest.mark.parametrize(("argv", "rc", "says"), [
    (["build", "bad.yaml"], 1, "missing required key 'units'"),
    (["build", "good.yaml", "-o", "missing_dir/m.keras"], 2, "does not exist"),
    (["import", "--application", "ResNet50", "-o", "missing_dir/x.yaml"], 2, "does not exist"),
    (["import", "no_such.keras", "-o", "x.yaml"], 2, "no_such.keras: no such file"),
    (["plot", "good.yaml", "-o", "missing_dir/m.png"], None, ""),
    (["plot", "bad.yaml"], None, ""),
    (["fit", "bad.yaml"], 1, "missing required key 'units'"),
    (["fit", "good.yaml", "--data", "none.npz"], 2, "none.npz: no such file or folder"),
    (["golden", "bad.yaml"], 1, "missing required key 'units'"),
    (["golden", "good.yaml", "--dir", "missing_dir"], 2, "missing_dir: no such folder"),
    (["build", "good.yaml", "--set", "h.units=oops"], 1, "units"),
])
def test_a_refusal_imports_no_backend(tmp_path: Path, argv: list[str], rc: int | None,
                                      says: str) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "good.yaml").write_text(SPEC)
    got = _refusal(tmp_path, argv)
    assert got["mods"] == [], got
    if rc is not None:
        assert got["rc"] == rc, got
    else:                              # plot: Graphviz missing (exit 1) or the spec refused
        assert got["rc"] != 0, got
    if says:
        assert says in got["out"] + got["err"], got
    assert "Traceback" not in got["err"]


# -- the validation-only install ------------------------------------------------------------
BLOCKER = """\
import importlib.abc, sys

BLOCKED = {"keras", "numpy", "tensorflow", "jax", "torch", "matplotlib", "pydot"}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""


@pytest.fixture()
def plain_install(tmp_path: Path) -> dict:
    """An environment where keras, numpy and the backends cannot be imported (a
    sitecustomize installs a meta-path blocker): what `pip install specc-keras` gives."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    (tmp_path / "good.yaml").write_text(SPEC)
    return {**ENV, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def test_the_blocker_blocks(tmp_path: Path, plain_install: dict) -> None:
    out = subprocess.run([sys.executable, "-c", "import numpy"], env=plain_install,
                         capture_output=True, text=True)
    assert out.returncode == 1 and "No module named 'numpy'" in out.stderr


@pytest.mark.parametrize("argv", [
    ["build", "good.yaml"], ["fit", "good.yaml"], ["golden", "good.yaml"],
    ["import", "--application", "ResNet50"], ["import", "--list"], ["plot", "good.yaml"],
])
def test_without_the_extra_one_line_names_it(tmp_path: Path, plain_install: dict,
                                             argv: list[str]) -> None:
    out = _specc(*argv, cwd=tmp_path, env=plain_install, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"specc: error: specc {argv[0]} needs ")
    assert out.stderr.rstrip().endswith('pip install "specc-keras[tensorflow]"')


def test_validation_works_without_the_extra(tmp_path: Path, plain_install: dict) -> None:
    for argv in (["validate", "good.yaml"], ["explain", "good.yaml"],
                 ["expand", "good.yaml"], ["schema"]):
        out = _specc(*argv, cwd=tmp_path, env=plain_install, timeout=120)
        assert out.returncode == 0, (argv, out.stderr)
    # the pre-commit hook's environment: this repository's specs, its configured plugin
    out = _specc("validate", "specs/", env=plain_install, timeout=120)
    n = len([*(ROOT / "specs").rglob("*.yaml"), *(ROOT / "specs").rglob("*.yml")])
    assert out.returncode == 0 and out.stderr.startswith(f"{n} spec files valid"), out.stderr


# -- small manners ---------------------------------------------------------------------------
def test_a_closed_pipe_ends_quietly() -> None:
    """`specc explain spec.yaml | head`: the reader is gone before specc writes."""
    proc = subprocess.Popen([sys.executable, "-m", "specc", "explain", "specs/mnist_cnn.yaml"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                 # long before the interpreter has started
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=120), err) == (141, "")


def test_submodules_are_attributes_after_import_specc() -> None:
    code = ("import sys, specc\n"
            "assert specc.overrides.parse_all(['seed=3'])[0].dotted == 'seed'\n"
            "assert specc.validation.load('specs/mnist_cnn.yaml').name == 'mnist_cnn'\n"
            "try:\n    specc.no_such_part\nexcept AttributeError:\n    pass\n"
            "else:\n    raise SystemExit('no AttributeError')\n"
            f"print([m for m in {HEAVY + ('numpy',)!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, timeout=120)
    assert (out.returncode, out.stdout) == (0, "[]\n"), out.stderr


NOISE = ("cudart_stub", "cuInit", "oneDNN", "absl::InitializeLog", "cpu_feature_guard",
         "retracing", "xla_bridge", "TfrtCpuClient")


@pytest.mark.keras
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_every_backend_starts_quietly(backend: str) -> None:
    pytest.importorskip(backend)
    # golden: TensorFlow starts after Keras on jax (data adapters), which printed absl and
    # cudart lines outside the quiet window, twice; the configured golden_dir is used
    out = _specc("golden", "specs/question_mlp.yaml", "--backend", backend)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.startswith("ok        specs/question_mlp.yaml")
    assert not [line for line in out.stderr.splitlines() if any(n in line for n in NOISE)], \
        out.stderr


@pytest.mark.parametrize(("verbose", "level"), [(False, "ERROR"), (True, "NOTSET")])
def test_tensorflow_warnings_such_as_retracing_are_quiet_unless_verbose(
        verbose: bool, level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep builds a model per run: TensorFlow's "triggered tf.function retracing"
    warnings go through the `tensorflow` logger (WARNING), which stays at ERROR."""
    import logging

    from specc import cli
    from specc.cli.backend import quiet_tensorflow

    logger = logging.getLogger("tensorflow")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    argv = ["fit", "s.yaml", "--set", "seed=1,2"] + (["--verbose"] if verbose else [])
    quiet_tensorflow(cli.make_parser().parse_args(argv))
    assert logging.getLevelName(logger.level) == level
