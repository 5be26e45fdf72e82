"""Files specc writes: models that save and reload, atomic writes, odd output paths, signals,
and what a killed run left behind."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specc
from specc.artifacts import (
    Terminated, check_output_path, clean_stale, write_atomic, write_with,
)
from specc.cli import main
from specc.errors import UsageError
from specc.spec.layers import LAYER_TYPES

ROOT = Path(__file__).resolve().parent.parent

ACTIVITY = """\
specc: 1
name: act
seed: 1
inputs:
  x: {shape: [5, 3]}
layers:
  - {name: ident, type: Identity}
  - {name: rnn, type: SimpleRNN, units: 4, return_sequences: true}
  - {name: sdrop, type: SpatialDropout1D, rate: 0.5}
  - {name: pool, type: GlobalAveragePooling1D}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: mse
penalties:
  - {name: p_ident, layer: ident, kind: l2, rate: 0.1}
  - {name: p_rnn, layer: rnn, kind: l2, rate: 0.1}
  - {name: p_sdrop, layer: sdrop, kind: l1, rate: 0.1}
"""


def test_activity_clauses_on_layers_keras_will_not_regularize(tmp_path: Path, capsys) -> None:
    """Identity (not saveable with an activity_regularizer), SimpleRNN (drops it silently) and
    SpatialDropout (refuses it) carry their clause on an identity layer after them."""
    keras = pytest.importorskip("keras")
    spec_path = tmp_path / "act.yaml"
    spec_path.write_text(ACTIVITY)
    out = tmp_path / "act.keras"
    assert main(["build", str(spec_path), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = keras.saving.load_model(out, safe_mode=True)
    rng = np.random.RandomState(0)
    x = rng.randn(6, 5, 3).astype("float32")
    y = rng.randn(6, 1).astype("float32")
    logs = loaded.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
    rnn = keras.Model(loaded.inputs, loaded.get_layer("rnn").output).predict(x, verbose=0)
    a = rnn.astype("float64").reshape(6, -1)
    assert logs["p_ident"] == pytest.approx(0.1 * np.mean(np.sum(x.astype("float64").reshape(
        6, -1) ** 2, axis=1)), rel=1e-5)
    assert logs["p_rnn"] == pytest.approx(0.1 * np.mean(np.sum(a ** 2, axis=1)), rel=1e-5)
    # SpatialDropout is the identity at evaluation
    assert logs["p_sdrop"] == pytest.approx(0.1 * np.mean(np.sum(np.abs(a), axis=1)), rel=1e-5)
    fresh = specc.build(specc.loads(ACTIVITY, "act.yaml"))
    assert fresh.evaluate(x, y, batch_size=6, verbose=0, return_dict=True) == pytest.approx(logs)


def test_every_layer_that_keeps_its_activity_regularizer_saves_it() -> None:
    """Each catalog layer whose clause goes on its own activity_regularizer accepts it, keeps
    it (not handed to a sublayer) and writes it into a config that deserializes back."""
    keras = pytest.importorskip("keras")
    from specc.runtime.objects import ActivityPenalty
    from test_layers_catalog import REQUIRED, spec

    problems = []
    for name, cls in LAYER_TYPES.items():
        if not cls.regularizes_own_output:
            continue
        clause = {"name": "a", "kind": "l2", "params": {"rate": 0.1}}
        reg = ActivityPenalty([clause])
        kwargs = ({"layer": keras.layers.LSTM(2)} if name == "Bidirectional" else
                  spec(name, **REQUIRED.get(name, {})).keras_kwargs())
        try:
            layer = getattr(keras.layers, name)(**kwargs, activity_regularizer=reg)
            again = keras.layers.deserialize(keras.layers.serialize(layer))
        except Exception as exc:           # noqa: BLE001 - collected and reported together
            problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:80]}")
            continue
        if layer.activity_regularizer is not reg:
            problems.append(f"{name}: Keras does not keep the regularizer on the layer")
        elif not isinstance(again.activity_regularizer, ActivityPenalty) or \
                again.activity_regularizer.clauses != [clause]:
            problems.append(f"{name}: the regularizer is lost on save")
    assert not problems, "\n".join(problems)


# --- where outputs go ------------------------------------------------------------------------

def _other_filesystem(tmp_path: Path) -> Path:
    for candidate in ("/dev/shm", "/run", "/var/tmp"):
        folder = Path(candidate)
        if folder.is_dir() and os.access(folder, os.W_OK) and \
                folder.stat().st_dev != tmp_path.stat().st_dev:
            return folder
    pytest.skip("no second writable filesystem here")


def test_symlink_to_another_filesystem_is_written_through(tmp_path: Path) -> None:
    other = Path(tempfile.mkdtemp(dir=_other_filesystem(tmp_path)))
    try:
        real = other / "model.keras"
        real.write_bytes(b"old")
        link = tmp_path / "out.keras"
        link.symlink_to(real)
        check_output_path(link, [])
        write_atomic(link, b"new")                 # was: [Errno 18] Invalid cross-device link
        assert link.is_symlink() and real.read_bytes() == b"new"
        assert sorted(p.name for p in other.iterdir()) == ["model.keras"]
        assert [p.name for p in tmp_path.iterdir()] == ["out.keras"]
    finally:
        shutil.rmtree(other)


def test_dangling_symlink_names_the_folder_it_points_into(tmp_path: Path) -> None:
    link = tmp_path / "out.keras"
    link.symlink_to(tmp_path / "gone" / "model.keras")
    with pytest.raises(UsageError) as info:
        check_output_path(link, [])
    assert str(info.value) == (f"{link} (a link to {tmp_path / 'gone' / 'model.keras'}): "
                               f"folder {str(tmp_path / 'gone')!r} does not exist")


def test_unwritable_folder_is_refused_before_the_build(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "act.yaml"
    spec.write_text(ACTIVITY)
    # /proc refuses new files even to root; a chmod'ed folder does not stop root
    assert main(["build", str(spec), "-o", "/proc/specc-test.keras"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""                      # no summary: nothing was built
    assert captured.err.startswith("specc: error: /proc/specc-test.keras: cannot write in "
                                   "folder '/proc' (")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert main(["build", str(spec), "-o", str(locked / "m.keras")]) == 2
        assert "cannot write in folder" in capsys.readouterr().err


# --- signals and what a killed run leaves ----------------------------------------------------

def test_sigterm_during_a_write_is_cleaned_up_like_ctrl_c(tmp_path: Path) -> None:
    target = tmp_path / "m.keras"
    target.write_bytes(b"old")

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(b"half a model")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)                              # the handler interrupts this
        pytest.fail("SIGTERM did not interrupt the write")

    with pytest.raises(Terminated):
        write_with(target, write)
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]
    assert target.read_bytes() == b"old"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL     # put back


def test_sigterm_during_fit_writes_no_record_and_keeps_the_last_whole_epoch(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """A scheduler's SIGTERM (preemption) while the final model is written: no record file
    appears, half-written or whole; the last whole epoch stays in .specc-resume for --resume
    (issue 22), and `--resume` then finishes the run."""
    import specc.fit

    spec = tmp_path / "act.yaml"
    spec.write_text(ACTIVITY)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def terminated_save(model: Any, path: Any) -> None:
        Path(path).write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    monkeypatch.setattr(specc.fit, "save_model", terminated_save)
    assert main(["fit", str(spec), "--epochs", "1", "--samples", "16", "--batch-size", "8",
                 "--out", str(out)]) == 143
    assert capsys.readouterr().err.endswith("specc: interrupted\n")
    assert sorted(p.name for p in out.iterdir()) == [".specc-resume", "notes.txt"]
    kept = out / ".specc-resume"
    state = json.loads((kept / "state.json").read_text())
    assert state["epoch"] == 1 and sorted(p.name for p in kept.iterdir()) == [
        "epoch-1.npz", "state.json"]
    monkeypatch.undo()
    assert main(["fit", str(spec), "--epochs", "1", "--samples", "16", "--batch-size", "8",
                 "--out", str(out), "--resume"]) == 0
    assert {"notes.txt", "model.keras", "history.csv"} <= {p.name for p in out.iterdir()}
    assert not kept.exists()


_KILLED_WRITER = """
import os, signal, sys
from specc.artifacts import write_with

def write(tmp):
    open(tmp, "wb").write(b"half")
    os.kill(os.getpid(), signal.SIGKILL)

write_with(sys.argv[1], write)
"""


def test_sigkill_leftovers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "m.keras"
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target)], cwd=ROOT)
    assert writer.wait() == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".m.keras.specc-{writer.pid}-")
    dead = _dead_pid()
    (tmp_path / f".specc-fit-{dead}-abcdefgh").mkdir()
    (tmp_path / f".specc-fit-{dead}-abcdefgh" / "history.csv").write_text("epoch\n")
    # look-alikes that are not ours, or whose process still runs: kept
    keep = [f".m.keras.specc-{os.getpid()}-abcdefgh.tmp.keras",   # this process: alive
            f".m.keras.specc-{dead}-abcdefgh.tmp.keras.bak",     # not the pattern
            ".m.keras.k2j3h4g5.tmp.keras",                       # no pid in the name
            f".specc-fit-{dead}-notes"]                          # not the pattern
    for name in keep:
        (tmp_path / name).write_text("user data")
    linked = tmp_path / f".x.specc-{dead}-abcdefgh.tmp"            # a link is never removed
    linked.symlink_to(tmp_path / keep[0])
    write_atomic(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.keras", linked.name, *keep])
    assert target.read_bytes() == b"new"


def test_stale_fit_folder_is_removed_by_the_next_fit(tmp_path: Path) -> None:
    """A folder of ours whose process is gone goes; a fresh one of a live process stays."""
    dead = _dead_pid()
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".specc-fit-{dead}-a1b2c3d4"
    stale.mkdir()
    (stale / "model.keras").write_bytes(b"half")
    live = out / f".specc-fit-{os.getppid()}-a1b2c3d4"    # pytest's parent: alive, older
    live.mkdir()
    assert clean_stale(out) == [stale.name]
    assert sorted(p.name for p in out.iterdir()) == [live.name]


def _dead_pid() -> int:
    """The id of a process that has exited (and, right after, is not reused)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    try:
        os.kill(child.pid, 0)
    except ProcessLookupError:
        return child.pid
    pytest.skip("the process id was reused at once")


# --- messages --------------------------------------------------------------------------------

def test_github_annotations_escape_property_values(tmp_path: Path, capsys) -> None:
    odd = tmp_path / "a,b:c%.yaml"
    odd.write_text("specc: 1\nname: x\n")
    assert main(["validate", "--format", "github", str(odd)]) == 1
    line = capsys.readouterr().out.splitlines()[0]
    escaped = str(odd).replace("%", "%25").replace(":", "%3A").replace(",", "%2C")
    assert line.startswith(f"::error file={escaped},line=")
    props = line.split("::")[1].removeprefix("error ")
    assert [p.split("=")[0] for p in props.split(",")] == ["file", "line", "col", "title"]


@pytest.mark.parametrize("command", ["validate", "golden", "build", "explain", "fit", "plot"])
def test_missing_spec_is_one_message_exit_2(command: str, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.yaml"
    args = [command, str(missing)] + (["--out", str(tmp_path / "o")] if command == "fit" else
                                      ["-o", str(tmp_path / "m.png")] if command == "plot" else [])
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err == f"specc: error: {missing}: no such file or folder\n"
    assert captured.out == ""


HUGE_KEY = "k" * 10_000


@pytest.mark.parametrize("section", [
    "inputs:\n  ? {key}\n  : {{shape: [3]}}\n",
    "metrics:\n  ? {key}\n  : [mae]\n",
    "loss_weights:\n  ? {key}\n  : 1\n",
    "loss:\n  ? {key}\n  : mse\n",
    "? {key}\n: 1\n",
])
def test_a_huge_explicit_key_is_quoted_short(section: str) -> None:
    text = ("specc: 1\nname: x\ninputs:\n  x: {shape: [3]}\nlayers:\n"
            "  - {name: d, type: Dense, units: 2}\noutputs: [d]\n")
    text += "" if section.startswith("loss:") else "loss: mse\n"
    text = text.replace("inputs:\n  x: {shape: [3]}\n", "") if section.startswith(
        "inputs") else text
    with pytest.raises(specc.SpecError) as info:
        specc.loads(text + section.format(key=HUGE_KEY), "k.yaml")
    assert all(len(d.message) < 300 for d in info.value.diagnostics), \
        max(len(d.message) for d in info.value.diagnostics)
