"""Benchmark: `specc fit` on the data a user has, against hand-written Keras on the same data.

    python tests/benchmarks/bench_fit_data.py                  # both parts, about 4 min
    python tests/benchmarks/bench_fit_data.py --part rss       # peak memory only
    python tests/benchmarks/bench_fit_data.py --part time --repeats 5 --epochs 5
    python tests/benchmarks/bench_fit_data.py --part time --pipelines images

Part `time` -- epoch time, one process, the same timing callback in both runs, added last
(from on_epoch_begin to the end of on_epoch_end, so specc's own epoch-end work -- the resume
state, TensorBoard, the history -- is inside): wall time and this process's CPU time (all its
threads). The first epoch, which traces, is left out. Each repeat runs specc and the hand
version one after the other, alternating which goes first, so that a change of the machine's
load falls on both alike; printed: the medians over every timed epoch of every repeat, their
ratio specc / hand (target <= 1.03), each repeat's ratio, and the load average:

    table   specc.fit.fit on a CSV table (--data t.csv)  vs  numpy.loadtxt of that table, then
            model.fit(x, y, batch_size, shuffle=True, validation_data) on specc.build's model
    images  specc.fit.fit on a folder of PNGs by class   vs  keras.utils.
            image_dataset_from_directory(same folder, a split of the same size) + model.fit

The spec has no activation clause (an activation clause adds specc's per-epoch measures, a
forward pass over the training and validation data, which hand-written Keras does not do).

Part `rss` -- peak resident memory (ru_maxrss of a `specc fit` subprocess) on an .npz 4x
larger than --max-data (memory-mapped, read batch by batch), against the same command on a
64x smaller file (what Python, TensorFlow and the model take without the data), and against
the big file read into memory (--max-data over its size).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEC = """\
specc: 1
name: bench
seed: 0
inputs:
  x: {shape: [SHAPE]}
layers:
  - {name: h, type: Dense, units: 64, activation: relu}
  - {name: probs, type: Dense, units: 2, activation: softmax}
outputs: [probs]
loss: sparse_categorical_crossentropy
weight_penalties:
  - {name: decay, layers: [h], kind: l2, rate: 1.0e-4}
metrics: [accuracy]
"""


def timer():
    import keras

    class EpochTimes(keras.callbacks.Callback):
        """Each epoch's wall time and this process's CPU time (all its threads)."""

        def __init__(self) -> None:
            super().__init__()
            self.times: list[tuple[float, float]] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            self.times.append((time.perf_counter() - self.start[0],
                               time.process_time() - self.start[1]))

    return EpochTimes()


def specc_epochs(spec_text: str, folder: Path, data: str, epochs: int, batch: int):
    """specc.fit.fit with the timing callback added (last) to its model.fit call: an epoch's
    time includes specc's own epoch-end work (the resume state, TensorBoard, the history)."""
    import keras

    import specc
    from specc.fit import FitOptions, fit, read_data

    graph = specc.lower(specc.loads(spec_text, str(folder / "s.yaml")))
    options = FitOptions(data=data, epochs=epochs, batch_size=batch, verbose=0,
                         spill=str(folder))
    arrays = read_data(graph, options)
    clock = timer()
    original = keras.Model.fit

    def timed_fit(self, *args, **kwargs):
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), clock]
        return original(self, *args, **kwargs)

    keras.Model.fit = timed_fit
    try:
        fit(graph, folder / f"out{time.monotonic_ns()}", options, arrays=arrays)
    finally:
        keras.Model.fit = original
    return clock.times


def hand_table(spec: str, csv: Path, k: int, epochs: int, batch: int):
    """What a user writes by hand: the table read with NumPy, Keras's own array pipeline."""
    import numpy as np

    import specc

    model = specc.build(specc.loads(spec, "s.yaml"))
    table = np.loadtxt(csv, delimiter=",", skiprows=1, dtype="float32")
    tx, ty = table[:, :k], table[:, k].astype("int32")
    held = int(len(tx) * 0.2)
    clock = timer()
    model.fit(tx[held:], ty[held:], batch_size=batch, epochs=epochs, verbose=0, shuffle=True,
              validation_data=(tx[:held], ty[:held]), callbacks=[clock])
    return clock.times


def hand_images(spec: str, folder: Path, epochs: int, batch: int):
    """What a user writes by hand: Keras's image_dataset_from_directory, split 80/20."""
    import keras

    import specc

    model = specc.build(specc.loads(spec, "s.yaml"))
    train, val = keras.utils.image_dataset_from_directory(
        folder, label_mode="int", batch_size=batch, image_size=(32, 32),
        validation_split=0.2, subset="both", seed=0, verbose=False)
    clock = timer()
    model.fit(train, validation_data=val, epochs=epochs, verbose=0, callbacks=[clock])
    return clock.times


def make_data(d: Path, args: argparse.Namespace) -> tuple[str, str]:
    """A CSV table (32 features, two classes) and a folder of 32x32 RGB PNGs in two classes;
    the two specs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    n, k = args.rows, 32
    x = rng.standard_normal((n, k)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    header = ",".join([f"x_{i}" for i in range(k)] + ["probs"])
    np.savetxt(d / "t.csv", np.column_stack([x, y]), delimiter=",", header=header,
               comments="", fmt=["%.7g"] * k + ["%d"])
    for c in range(2):
        (d / "img" / f"c{c}").mkdir(parents=True)
        for i in range(args.images // 2):
            pixels = (rng.random((32, 32, 3)) * 127 + 128 * c).astype("uint8")
            Image.fromarray(pixels).save(d / "img" / f"c{c}" / f"{i}.png")
    ispec = SPEC.replace("SHAPE", "32, 32, 3").replace(
        "  - {name: h,", "  - {name: flat, type: Flatten}\n  - {name: h,")
    return SPEC.replace("SHAPE", str(k)), ispec


def part_time(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        spec, ispec = make_data(d, args)
        runs = {
            "table (CSV)": (lambda: specc_epochs(spec, d, str(d / "t.csv"), args.epochs,
                                                 args.batch),
                            lambda: hand_table(spec, d / "t.csv", 32, args.epochs, args.batch)),
            "images (folder)": (lambda: specc_epochs(ispec, d, str(d / "img"), args.epochs,
                                                     args.batch),
                                lambda: hand_images(ispec, d / "img", args.epochs, args.batch)),
        }
        # each repeat: per pipeline, specc then hand, or hand then specc (alternating), so
        # that a change of the machine's load falls on both alike
        runs = {k: v for k, v in runs.items() if k.split()[0] in args.pipelines}
        got: dict[str, dict[str, list]] = {k: {"specc": [], "hand": []} for k in runs}
        loads = [os.getloadavg()[0]]
        for r in range(args.repeats):
            for name, (s, h) in runs.items():
                for who, run in ((("specc", s), ("hand", h)) if r % 2 == 0 else
                                 (("hand", h), ("specc", s))):
                    if who in args.only or not args.only:
                        got[name][who].append(run()[1:])      # epoch 1 traces: left out
            loads.append(os.getloadavg()[0])
    print(f"epoch time, epochs 2..{args.epochs} of {args.repeats} interleaved runs each "
          f"(epoch 1 traces); load average (1 min) {min(loads):.1f}-{max(loads):.1f}")
    for name, both in got.items():
        if not both["specc"] or not both["hand"]:
            continue
        line = f"  {name:16s}"
        for i, what in ((0, "wall"), (1, "CPU")):
            ms, mh = (statistics.median(e[i] for run in both[w] for e in run)
                      for w in ("specc", "hand"))
            line += (f"  {what}: specc {ms * 1000:7.1f} ms hand {mh * 1000:7.1f} ms "
                     f"ratio {ms / mh:.3f}")
        print(line)
        for i, what in ((0, "wall"), (1, "CPU")):
            paired = [statistics.median(e[i] for e in a) / statistics.median(e[i] for e in b)
                      for a, b in zip(both["specc"], both["hand"])]
            print(f"  {'':16s}  {what} ratio per repeat: " + " ".join(f"{p:.3f}" for p in paired))


#: Runs the command given as its arguments and prints that child's peak RSS (KiB): one
#: wrapper per measurement, since RUSAGE_CHILDREN keeps the maximum over all children.
_WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], "
         "capture_output=True, text=True); sys.stderr.write(r.stderr[-3000:]); "
         "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss(cmd: list[str]) -> float:
    """Peak resident memory (MiB) of `cmd` run alone."""
    done = subprocess.run([sys.executable, "-c", _WRAP, *cmd], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    code, kib = done.stdout.split()[-2:]
    if code != "0":
        raise SystemExit(done.stderr[-3000:])
    return int(kib) / 1024


def part_rss(args: argparse.Namespace) -> None:
    import zipfile

    import numpy as np

    budget = args.max_data_mib
    width = 4096                                # 16 KiB a row of float32
    rows = budget * 4 * 1024 * 1024 // (width * 4)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        spec = d / "s.yaml"
        spec.write_text(SPEC.replace("SHAPE", str(width)))
        for name, n in (("small", rows // 64), ("big", rows)):
            x = np.lib.format.open_memmap(d / "x.npy", mode="w+", dtype="float32",
                                          shape=(n, width))
            for s in range(0, n, 2048):
                x[s:s + 2048] = np.random.default_rng(s).standard_normal(
                    (min(2048, n - s), width), dtype="float32")
            x.flush()
            del x
            np.save(d / "y.npy", (np.arange(n) % 2).astype("int64"))
            with zipfile.ZipFile(d / f"{name}.npz", "w", zipfile.ZIP_STORED,
                                 allowZip64=True) as z:
                z.write(d / "x.npy", "x.npy")
                z.write(d / "y.npy", "probs.npy")
            os.unlink(d / "x.npy")
        cmd = [sys.executable, "-m", "specc", "fit", str(spec), "--epochs", "1",
               "--batch-size", "256"]
        size = (d / "big.npz").stat().st_size / 2**20
        small = peak_rss([*cmd, "--data", str(d / "small.npz"), "--out", str(d / "o1")])
        big = peak_rss([*cmd, "--data", str(d / "big.npz"), "--max-data", f"{budget}M",
                        "--out", str(d / "o2")])
        inmem = peak_rss([*cmd, "--data", str(d / "big.npz"), "--max-data", f"{budget * 8}M",
                          "--out", str(d / "o3")])
    print(f"peak RSS of `specc fit` (1 epoch, batches of 256):")
    print(f"  .npz of {size / 64:6.0f} MiB, in memory:                      {small:6.0f} MiB "
          "(Python, TensorFlow, the model)")
    print(f"  .npz of {size:6.0f} MiB = {size / budget:.1f}x --max-data {budget}M, mapped: "
          f"{big:6.0f} MiB")
    print(f"  the same .npz read into memory (--max-data {budget * 8}M):     {inmem:6.0f} MiB")
    print(f"  mapped minus small: {big - small:+.0f} MiB; in memory minus small: "
          f"{inmem - small:+.0f} MiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("time", "rss", "all"), default="all")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", nargs="*", default=[], choices=("specc", "hand"))
    p.add_argument("--pipelines", nargs="*", default=["table", "images"],
                   choices=("table", "images"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--max-data-mib", type=int, default=64)
    args = p.parse_args()
    if args.part in ("time", "all"):
        part_time(args)
    if args.part in ("rss", "all"):
        part_rss(args)


if __name__ == "__main__":
    main()
