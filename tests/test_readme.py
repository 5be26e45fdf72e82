"""The README stays true: its commands, formulas and example outputs are checked here."""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import specc
from specc import penalties
from specc.cli import main, make_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block_after(marker: str) -> str:
    """The first fenced block after `marker`."""
    rest = README[README.index(marker):]
    match = re.search(r"```[a-z]*\n(.*?)```", rest, re.S)
    assert match, marker
    return match.group(1)


def test_ci_runs_the_readme_test_command_in_a_fresh_venv() -> None:
    """The last line is the README's command; before it, only a new venv in a new temporary
    folder, activated (what a newcomer has after a clone)."""
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[-1] == "python -m pip install -e '.[test]' && python -m pytest"
    assert f"```console\n{lines[-1]}\n```" in README
    assert lines[:-1] == [
        "set -euo pipefail",
        'cd "$(dirname "$0")/.."',
        'tmp="$(mktemp -d)"',
        """trap 'rm -rf "$tmp"' EXIT""",
        '"${PYTHON:-python3}" -m venv "$tmp/venv"',
        '. "$tmp/venv/bin/activate"',
    ]


# -- the distribution is specc-keras ----------------------------------------------------------
PUBLISHED = [ROOT / "README.md", ROOT / ".pre-commit-hooks.yaml", ROOT / ".ci" / "run",
             ROOT / "pyproject.toml", ROOT / "tests" / "benchmarks" / "README.md"]


def test_the_distribution_is_specc_keras_everywhere() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'(?m)^name = "specc-keras"$', pyproject)
    # extras that name the project itself name it by its distribution name
    assert set(re.findall(r'"(specc[\w-]*)\[', pyproject)) == {"specc-keras"}
    for path in PUBLISHED:
        text = path.read_text(encoding="utf-8")
        wrong = re.findall(r"pip install [\"']?specc(?!-keras)\b[^\s]*", text)
        assert not wrong, f"{path.name}: {wrong}"
    # nothing is released: the README installs from a clone or the git URL, and says so
    assert "`pip install specc-keras` finds nothing today" in README
    assert 'pip install "specc-keras @ git+' in README
    assert 'pip install "specc-keras[tensorflow] @ git+' in README
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in README


def test_version_is_one_number() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (version,) = re.findall(r'(?m)^version = "([^"]+)"$', pyproject)
    assert specc.__version__ == version
    out = subprocess.run([sys.executable, "-m", "specc", "--version"], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout
    assert out == f"specc {version}\n"
    try:                              # installed under its name (the README's commands do)
        installed = importlib.metadata.version("specc-keras")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("specc-keras is not installed in this environment (an older install)")
    assert installed == version


# -- the command line tells its defaults, the README tells every option ------------------------
def _commands() -> dict[str, argparse.ArgumentParser]:
    return make_parser()._subparsers._group_actions[0].choices


def test_help_shows_every_default() -> None:
    for name, command in _commands().items():
        text = " ".join(command.format_help().split())
        for action in command._actions:
            if not action.option_strings or action.default in (None, False, [],
                                                               argparse.SUPPRESS):
                continue
            assert (f"(default: {action.default})" in text
                    or "default" in (action.help or "")), (name, action.option_strings)
    fit = " ".join(_commands()["fit"].format_help().split())
    assert all(s in fit for s in ("--epochs N training epochs (default: 5;",
                                  "--batch-size N samples per batch (default: 64;",
                                  "(default: 2048)"))


def test_every_option_is_in_the_readme() -> None:
    for name, command in _commands().items():
        for action in command._actions:
            if not action.option_strings or "--help" in action.option_strings:
                continue
            assert any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", README)
                       for o in action.option_strings), (name, action.option_strings)


def test_every_formula_of_the_catalog_is_in_the_readme() -> None:
    for kind in penalties.CATALOG.values():
        assert kind.formula.replace("|", "\\|") in README, kind.name
        assert f"| `{kind.default_via}` |" in README
    for formula in penalties.WEIGHT_FORMULAS.values():
        assert formula in README
    for kind in penalties.CATALOG.values():       # the masked forms, and what axis/masks do
        masked = kind.masked.replace("|", "\\|")
        assert f"| `{kind.name}` | {masked} |" in README, kind.name
    assert penalties.MASK_NOTE in README and penalties.AXIS_NOTE in README
    for kind in penalties.PAIR_CATALOG.values():  # penalties between two tensors
        assert f" | {kind.formula} |" in README, kind.name
    assert penalties.STOP_GRADIENT_NOTE in README and penalties.ORTHOGONAL_NOTE in README


def test_every_command_is_documented() -> None:
    commands = make_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"`specc {name}" in README, name


def test_worked_example_output_is_real(capsys) -> None:
    assert main(["build", "specs/mnist_cnn.yaml"]) == 0
    got = capsys.readouterr().out
    shown = _block_after("`specc build specs/mnist_cnn.yaml -o mnist_cnn.keras` prints")
    assert shown.replace("\nwrote mnist_cnn.keras\n", "") == got


def test_diagnostics_example_is_real(capsys) -> None:
    shown = _block_after("A bad spec reads like this")
    files = sorted({line.split(":")[0] for line in shown.splitlines()})
    assert main(["validate", *files]) == 1
    assert capsys.readouterr().out == shown


# -- TensorFlow's start-up lines stay off the terminal unless --verbose -------------------------
NOISE = ("cudart_stub", "cuInit", "oneDNN", "absl::InitializeLog", "cpu_feature_guard")


def test_build_shows_no_tensorflow_start_up_lines() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "specc", "build", "specs/question_mlp.yaml"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith('Model: "question_mlp"')
    assert not [line for line in run.stderr.splitlines() if any(n in line for n in NOISE)], \
        run.stderr


def test_import_quietly_hides_fd_2_and_replays_it_on_failure(tmp_path: Path) -> None:
    (tmp_path / "noisy.py").write_text("import os\nos.write(2, b'cudart_stub.cc: loud\\n')\n")
    (tmp_path / "broken.py").write_text(
        "import os\nos.write(2, b'why it broke\\n')\nraise ImportError('broken')\n")
    code = ("import os, sys\nfrom specc.cli.backend import import_quietly\nimport_quietly('noisy')\n"
            "assert 'noisy' in sys.modules\nos.write(2, b'after\\n')\n"
            "import_quietly('broken')\nassert 'broken' not in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert (run.returncode, run.stderr) == (0, "after\nwhy it broke\n")


@pytest.mark.parametrize(("argv", "level"), [
    (["build", "s.yaml"], "3"),
    (["validate", "s.yaml"], "3"),
    (["build", "s.yaml", "--verbose"], None),  # TensorFlow's own defaults, every line
])
def test_verbose_leaves_tensorflow_alone(argv: list[str], level: str | None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the command runs only log levels are set: nothing is imported (a command
    that refuses never starts a backend; see test_project)."""
    from specc.cli import backend

    calls: list[str] = []
    monkeypatch.setattr(backend, "import_quietly", calls.append)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    backend.quiet_tensorflow(make_parser().parse_args(argv))
    assert (calls, os.environ.get("TF_CPP_MIN_LOG_LEVEL")) == ([], level)


@pytest.mark.parametrize(("backend", "imported"), [
    ("tensorflow", ["tensorflow", "keras"]),
    ("jax", ["tensorflow", "jax", "keras"]),     # TensorFlow starts later on jax too: now,
])                                               # in the quiet window
def test_a_backend_starts_in_the_quiet_window(backend: str, imported: list[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.cli import backend as starting
    from specc.config import Options

    calls: list[str] = []
    monkeypatch.setattr(starting, "import_quietly", calls.append)
    monkeypatch.setattr(starting, "findable", lambda module: True)
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", backend)
    starting.start_backend(Options())
    assert calls == imported


# -- the README's CI snippets run on this repository ----------------------------------------
def _snippet_env() -> dict[str, str]:
    """What CI has after the install step: this checkout importable, `specc` on the path,
    nothing else (no PYTHONPATH to a plugin, no TensorFlow log level)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    bin_dir = Path(sys.executable).parent
    return {**env, "PYTHONPATH": str(ROOT),
            "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", "")])}


def _specc_command(command: str) -> list[str]:
    """A snippet's `specc ...` as this interpreter runs it (the console script of an
    install elsewhere may point at another checkout)."""
    words = command.split()
    assert words[0] == "specc", command
    return [sys.executable, "-m", "specc", *words[1:]]


def test_the_pre_commit_snippet_passes_on_this_repository() -> None:
    import yaml

    snippet = yaml.safe_load(_block_after("A pre-commit hook is provided"))
    (repo,) = snippet
    (wanted,) = repo["hooks"]
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    hook = hooks[wanted["id"]]
    assert hook["language"] == "python" and hook["types"] == ["yaml"]
    # the files pre-commit would pass: tracked, matching `files:`, of type yaml
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    files = [f for f in tracked if re.search(wanted["files"], f)
             and f.endswith((".yaml", ".yml"))]
    assert "specs/transformer/transformer_text.yaml" in files and len(files) > 10
    run = subprocess.run([*_specc_command(hook["entry"]), *files], cwd=ROOT,
                         env=_snippet_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr.startswith(f"{len(files)} spec files valid")


def _actions_steps(marker: str) -> list[str]:
    """The `run:` commands of the README's GitHub Actions snippet after `marker`."""
    import yaml

    doc = yaml.safe_load(_block_after(marker))
    steps = doc if isinstance(doc, list) else doc["jobs"]["specs"]["steps"]
    return [step["run"] for step in steps if "run" in step]


def _check_install(command: str) -> None:
    """`pip install SPEC` resolves on this checkout, offline, against what is installed:
    pip's dry run with no index (only specc-keras itself is left to install)."""
    words = shlex.split(command)
    assert words[:2] == ["pip", "install"] and len(words) == 3, command
    target = words[2]
    assert target == "." or target.startswith(".["), command
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
         "--no-build-isolation", "--quiet", "--report", "-", target],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    names = [item["metadata"]["name"] for item in json.loads(report.stdout)["install"]]
    assert names == ["specc-keras"], names


def test_the_validation_actions_snippet_passes_on_this_repository() -> None:
    steps = _actions_steps("`--format github` prints GitHub Actions annotations")
    assert steps == ["pip install .", "specc validate --format github specs/"]
    _check_install(steps[0])
    run = subprocess.run(_specc_command(steps[1]), cwd=ROOT, env=_snippet_env(),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "::error" not in run.stdout


@pytest.mark.keras
def test_the_golden_actions_snippet_passes_on_this_repository() -> None:
    """The whole workflow: install, validate, every example against its golden files (the
    shell expands specs/*.yaml, as on the runner)."""
    steps = _actions_steps("In GitHub Actions:")
    assert steps[0] == 'pip install ".[tensorflow]"' and len(steps) == 3
    _check_install(steps[0])
    env = {**_snippet_env(), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    for step in steps[1:]:
        words = shlex.split(step)
        shell = f"{shlex.quote(sys.executable)} -m specc {' '.join(words[1:])}"
        run = subprocess.run(["bash", "-c", shell], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=1800)
        assert run.returncode == 0, (step, run.stdout[-3000:] + run.stderr[-3000:])
    examples = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
    assert "resnet50" in examples and "mobilenet_v2" in examples
    for stem in examples:                    # every example has its files on both backends
        for backend in ("", ".jax"):
            assert (ROOT / "tests" / "golden" / f"{stem}{backend}.losses.json").is_file()


# -- a clause has no `params:` key (the key table says so); the message says where to write ------
def test_params_in_a_clause_says_write_it_in_the_clause() -> None:
    text = ("specc: 1\nname: m\ninputs:\n  x: {shape: [4]}\nlayers:\n"
            "  - {name: h, type: Dense, units: 3, activation: sigmoid}\noutputs: [h]\n"
            "loss: mse\npenalties:\n"
            "  - {name: sp, layer: h, kind: kl_sparsity, rate: 0.1, params: {target: 0.05}}\n")
    with pytest.raises(specc.SpecError) as info:
        specc.loads(text, "p.yaml")
    assert [(d.line, d.column, d.code, d.message) for d in info.value.diagnostics] == [
        (10, 5, "missing-key", "missing required key 'target' (it is under `params:`; write it "
                               "in the clause itself, beside `kind`)"),
        (10, 56, "unknown-key", "unknown key 'params': a clause has no `params`; write 'target' "
                                "in the clause itself, beside `kind`"),
    ]
    assert "there is no `params:` key" in README
    fixed = text.replace("params: {target: 0.05}", "target: 0.05")
    assert specc.loads(fixed, "p.yaml").penalties[0].target == 0.05
