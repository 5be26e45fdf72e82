"""The command line: exit codes, output formats, and files written without loss."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specc.cli import main

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "tests" / "golden" / "invalid"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "specs" / "transformer")])}


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specc", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True)


def test_validate_exit_codes(tmp_path: Path) -> None:
    # specs/transformer needs its layer plugin (on the path, chosen with --plugin)
    plugged = ("--plugin", "transformer_layers")
    assert run("validate", "specs", *plugged).returncode == 0
    bad = run("validate", "specs", str(INVALID / "unknown_ref.yaml"), *plugged)
    assert bad.returncode == 1
    errors = [line for line in bad.stdout.splitlines() if ": error: " in line]
    assert errors == [f"{INVALID / 'unknown_ref.yaml'}:7:45: error: unknown input or layer "
                      "'h9' (known: x, h1, h2)  [unknown-ref]"]
    # question_mlp's `reduction: sum` is a warning: printed, counted apart, not failing
    n = len(list((ROOT / "specs").rglob("*.yaml"))) + 1
    assert bad.stderr.strip() == f"1 error in 1 of {n} files (1 warning)"
    assert run("validate", str(tmp_path / "missing.yaml")).returncode == 2
    assert run("validate").returncode == 2
    assert run("validate", str(tmp_path)).returncode == 2     # a folder without specs


def test_validate_json_and_github_formats() -> None:
    case = str(INVALID / "clause_name_collision.yaml")
    out = run("validate", "--format", "json", case)
    assert out.returncode == 1
    problems = json.loads(out.stdout)
    assert [p["code"] for p in problems] == ["name-collision"] * 4
    assert problems[0] == {"file": case, "line": 12, "column": 12, "severity": "error",
                           "code": "name-collision",
                           "message": "clause name 'task_loss' collides with the loss without "
                                      "penalties in the training logs; pick another name"}
    gh = run("validate", "--format", "github", case)
    assert gh.stdout.splitlines()[0] == (
        f"::error file={case},line=12,col=12,title=specc [name-collision]::clause name "
        "'task_loss' collides with the loss without penalties in the training logs; pick "
        "another name")


def test_validate_recurses_into_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.yml").write_text((ROOT / "specs/cnn_sparsity.yaml").read_text())
    (tmp_path / "a" / "bad.yaml").write_text("specc: 1\n")
    (tmp_path / "a" / "notes.txt").write_text("not a spec")
    out = run("validate", str(tmp_path))
    assert out.returncode == 1
    assert out.stdout.count("\n") == 5 and "bad.yaml" in out.stdout and "deep.yml" not in out.stdout
    assert out.stderr == "5 errors in 1 of 2 files\n"


def test_many_files_use_workers_and_keep_file_order(tmp_path: Path) -> None:
    text = (ROOT / "specs/mnist_cnn.yaml").read_text()        # valid without warnings
    for i in range(240):
        bad = "" if i % 60 else "\nbogus: 1"
        (tmp_path / f"s{i:03d}.yaml").write_text(text + bad)
    out = run("validate", str(tmp_path))
    assert out.returncode == 1
    assert [line.split(":")[0].rsplit("/", 1)[1] for line in out.stdout.splitlines()] == [
        "s000.yaml", "s060.yaml", "s120.yaml", "s180.yaml"]


def test_schema_command_matches_the_file(tmp_path: Path) -> None:
    out = run("schema", "--no-config")      # the format's schema: no project plugin
    assert json.loads(out.stdout) == json.loads((ROOT / "schemas/specc.schema.json").read_text())
    assert main(["schema", "--no-config", "-o", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text() == out.stdout


# -- build: the artifact is written whole or not at all -----------------------------------

def test_build_prints_summary_and_loss_composition(capsys) -> None:
    assert main(["build", "specs/mnist_cnn.yaml"]) == 0
    out = capsys.readouterr().out
    assert 'Model: "mnist_cnn"' in out
    assert "loss = task_loss + dense4_energy + decay" in out
    assert ("dense4_energy = l2(rate=0.001) on dense4 [before its activation], via add_loss: "
            "r · mean_i Σ_j a_ij²") in out


def test_build_writes_atomically_and_keeps_the_old_file(tmp_path: Path, capsys) -> None:
    target = tmp_path / "m.keras"
    assert main(["build", "specs/question_mlp.yaml", "-o", str(target)]) == 0
    first = target.read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "specs/question_mlp.yaml").read_text().replace(
        "units: 128", "units: 128, kernel_size: 3"))
    assert main(["build", str(bad), "-o", str(target)]) == 1
    assert target.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "m.keras"]


def test_build_refuses_to_overwrite_its_spec(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "s.keras"
    spec.write_text((ROOT / "specs/question_mlp.yaml").read_text())
    before = spec.read_text()
    assert main(["build", str(spec), "-o", str(spec)]) == 2
    assert spec.read_text() == before
    assert "refusing to overwrite the input spec" in capsys.readouterr().err


def test_shape_error_is_found_at_validation(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "shape.yaml"
    spec.write_text("specc: 1\nname: m\ninputs:\n  x: {shape: [8]}\nlayers:\n"
                    "  - {name: conv, type: Conv2D, filters: 2, kernel_size: 3}\n"
                    "outputs: [conv]\nloss: mse\n")
    assert main(["validate", str(spec)]) == 1
    assert capsys.readouterr().out == (
        f"{spec}:6:5: error: layer 'conv' (Conv2D): Conv2D needs inputs of shape (batch, rows, "
        "cols, channels), got (batch, 8)  [shape]\n")


def test_build_error_in_keras_is_located(tmp_path: Path, capsys) -> None:
    # Static shapes leave channels_first layouts to Keras: only Keras sees that a 5x5 kernel
    # does not fit a 4x4 image. (Dot, the earlier example here, now has a static rule.)
    spec = tmp_path / "cf.yaml"
    spec.write_text("specc: 1\nname: m\ninputs:\n  a: {shape: [3, 4, 4]}\nlayers:\n"
                    "  - {name: conv, type: Conv2D, filters: 2, kernel_size: 5, "
                    "data_format: channels_first}\n  - {name: out, type: Flatten}\n"
                    "outputs: [out]\nloss: mse\n")
    assert main(["validate", str(spec)]) == 0
    capsys.readouterr()
    assert main(["build", str(spec), "-o", str(tmp_path / "m.keras")]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{spec}:6:5: error: layer 'conv' (Conv2D) cannot be built: ")
    assert out.rstrip().endswith("[build]") and "Traceback" not in out
    assert len(out.splitlines()) == 1
    assert not (tmp_path / "m.keras").exists()


def test_interrupted_save_leaves_no_stray_file(tmp_path: Path, monkeypatch) -> None:
    from specc import artifacts

    class Boom:
        optimizer = None

        def save(self, path):
            Path(path).write_bytes(b"half a model")
            raise KeyboardInterrupt

    target = tmp_path / "m.keras"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        artifacts.save_model(Boom(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]
    assert target.read_bytes() == b"old"


def test_golden_checks_a_folders_block_library_without_a_model(tmp_path: Path, capsys) -> None:
    # `specc golden specs/` meets specs/blocks/resnet.yaml: a library has no model to pin; it is
    # checked as `specc validate` checks it, and a broken one fails the run (no Keras started)
    lib = ROOT / "specs" / "blocks" / "resnet.yaml"
    assert main(["golden", str(lib), "--dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{lib}: block library, valid (no model to pin)\n"
    assert err.strip() == "0 specs: golden files match (1 block library valid)"
    broken = tmp_path / "lib.yaml"
    broken.write_text(lib.read_text() + "  bad: 3\n")
    assert main(["golden", str(tmp_path), "--dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "error: block 'bad': expected a mapping with `layers:`  [bad-type]" in out
    assert err.strip() == "1 of 1 spec failed"
