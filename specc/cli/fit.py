"""`specc fit SPEC`: train a spec; the loss broken down by term, with plots; `--set` lists
sweep (`--jobs N` points at once)."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Final

from specc.cli.backend import start_backend
from specc.cli.common import add_spec, spec_file
from specc.config import Options
from specc.errors import SpecError, UsageError

HELP = "train a spec; the loss broken down by term, with plots"
KERAS = True


def data_size(text: str) -> int:
    from specc.data import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None



def add_arguments(p: argparse.ArgumentParser) -> None:
    add_spec(p, sweep=True)
    p.add_argument("--data", metavar="SOURCE",
                   help="an .npz, a folder of NAME.npy files, a .csv (or .parquet) table with "
                        "columns named after the inputs and outputs, a folder of class folders "
                        "(images, or text files for a string input), or module:function "
                        "returning what Keras's fit takes (default: seeded synthetic data)")
    p.add_argument("--validation", metavar="SOURCE",
                   help="the validation set, as --data (default: split off the training data)")
    p.add_argument("--validation-split", type=float, default=None, metavar="F",
                   help="fraction held out for validation without --validation (default 0.2)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the validation split and of the order of each epoch "
                        "(default: the spec's seed, else 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed run in --out from its last whole epoch")
    p.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                   help="stop after this many epochs without improvement of --monitor")
    p.add_argument("--monitor", default=None, metavar="KEY",
                   help="what early stopping and --checkpoint watch (default: val_loss, or "
                        "loss without validation data)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="a sweep (--set PATH=A,B,...): run N of its points at once, each in "
                        "its own process (default 1)")
    p.add_argument("--checkpoint", action="store_true", default=None,
                   help="keep the best epoch's model (by --monitor) as best.keras")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="train on data holding NaN or infinite values (refused by default)")
    p.add_argument("--max-data", type=data_size, default=None, metavar="SIZE",
                   help="data within this size is read into memory, larger arrays are "
                        "memory-mapped and read batch by batch, e.g. 512M, 8G (default 2G)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="training epochs (default: 5; or the spec's training.epochs)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="samples per batch (default: 64; or the spec's training.batch_size)")
    p.add_argument("--samples", type=int, default=2048, metavar="N",
                   help="size of the synthetic set, without --data")
    p.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    p.add_argument("--drop-penalties", action="store_true",
                   help="set every penalty's rate to 0: the same model trained without them")
    p.add_argument("--strategy", choices=("none", "mirrored", "data_parallel", "multi_worker"),
                   default="none", help=(
                       "mirrored: tf.distribute.MirroredStrategy over the local devices "
                       "(tensorflow); data_parallel: keras.distribution.DataParallel over "
                       "every device (jax), across processes with --coordinator; "
                       "multi_worker: withdrawn (see the README)"))
    p.add_argument("--coordinator", metavar="HOST:PORT", help=(
        "data_parallel across processes: the address of process 0 (jax.distributed)"))
    p.add_argument("--num-processes", type=int, metavar="N", help=(
        "data_parallel across processes: how many take part (one per host, say)"))
    p.add_argument("--process-id", type=int, metavar="I", help=(
        "data_parallel across processes: this one's id, 0 .. N-1 (0 is the coordinator)"))


#: Why `--strategy multi_worker` is refused (README: Scale-out).
MULTI_WORKER_WITHDRAWN: Final = (
    "--strategy multi_worker is withdrawn: Keras 3's fit under tf.distribute."
    "MultiWorkerMirroredStrategy fails (keras #20585: 'Attempt to convert a value "
    "(PerReplica...) to a Tensor'); to train on several machines use the JAX backend: "
    "--backend jax --strategy data_parallel --coordinator HOST:PORT --num-processes N "
    "--process-id I")


def _strategy(args: argparse.Namespace) -> tuple[object, tuple[int, int] | None]:
    """(tf.distribute strategy or None, this process's data share or None) for `specc fit`;
    `data_parallel` sets a keras.distribution (JAX), across processes with --coordinator."""
    name = args.strategy
    cluster = [args.coordinator, args.num_processes, args.process_id]
    if any(v is not None for v in cluster) and name != "data_parallel":
        raise UsageError("--coordinator, --num-processes and --process-id go with "
                         "--strategy data_parallel (JAX backend)")
    if name == "multi_worker":
        raise UsageError(MULTI_WORKER_WITHDRAWN)
    processes = any(v is not None for v in cluster)
    if processes and None in cluster:
        raise UsageError("several processes: give --coordinator, --num-processes and "
                         "--process-id together")
    if processes and (args.num_processes < 1 or
                      not 0 <= args.process_id < args.num_processes):
        raise UsageError(f"--process-id {args.process_id} of --num-processes "
                         f"{args.num_processes}: give 0 <= id < count")
    if name in (None, "none"):
        return None, None
    import keras

    backend = keras.backend.backend()
    if name == "mirrored":
        if backend != "tensorflow":
            raise UsageError(f"--strategy mirrored is tf.distribute's: it needs the tensorflow "
                             f"backend (this is {backend}; on jax use --strategy data_parallel)")
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(), None
    if backend != "jax":
        raise UsageError(f"--strategy data_parallel needs the jax backend (this is {backend}: "
                         "add --backend jax; on tensorflow use --strategy mirrored)")
    share = (0, 1)
    if processes:
        count, pid = args.num_processes, args.process_id
        import jax

        # CPU collectives between processes (GPUs and TPUs bring their own)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=count, process_id=pid)
        share = (pid, count)
    import jax

    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=jax.devices(), auto_shard_dataset=False))
    return None, share


def run(args: argparse.Namespace, options: Options) -> int:
    if any(len(o.choices) > 1 for o in options.overrides):
        return _fit_sweep(args, options)
    return _fit_one(args, options, args.out)


def _fit_sweep(args: argparse.Namespace, options: Options) -> int:
    """`--set PATH=A,B,...`: one run per value (the product of every list), each into its
    own sub-folder of --out, then one comparison table (sweep.csv) and plot (sweep.png)."""
    import specc
    from specc.overrides import sweep

    runs = sweep(options.overrides)
    problems = []
    for _, overrides in runs:                  # every run's spec valid before any training
        try:
            specc.load(spec_file(args.spec), overrides=overrides, limits=options.limits)
        except SpecError as exc:
            problems.extend(d for d in exc.diagnostics if d not in problems)
    if problems:
        raise SpecError(problems)
    point = os.environ.get(SWEEP_POINT)
    if point is not None:                      # one point of a parallel sweep (a child)
        chosen = [r for r in runs if r[0] == point]
        if not chosen:
            raise UsageError(f"{SWEEP_POINT}={point}: not a point of this sweep")
        return _fit_one(args, replace(options, overrides=tuple(chosen[0][1])),
                        str(Path(args.out) / point))
    done = []
    if args.jobs > 1 or args.resume:
        code = _fit_points(args, options, runs, done)
        if code:
            return code
    for name, overrides in runs:
        if any(r.out_dir.name == name for _, r, _ in done):
            continue
        print(f"\n== run {name} ({len(done) + 1} of {len(runs)}) ==", flush=True)
        code = _fit_one(args, replace(options, overrides=tuple(overrides)),
                        str(Path(args.out) / name), done)
        if code:
            return code
    order = [name for name, _ in runs]
    done.sort(key=lambda d: order.index(d[1].out_dir.name))
    from specc.fit import compare_runs

    varying = [o.dotted for o in options.overrides if len(o.choices) > 1]
    print()
    print(compare_runs(Path(args.out), varying, done))
    print(f"wrote {args.out}/: {len(done)} run folders, sweep.csv, sweep.png")
    return 0


#: The environment variable that makes a `specc fit` sweep run one of its points (--jobs).
SWEEP_POINT: Final = "SPECC_SWEEP_POINT"


def _fit_points(args: argparse.Namespace, options: Options, runs: list, done: list) -> int:
    """`--jobs N`: the points of a sweep in N `specc fit` processes at once, each into its
    own sub-folder (published whole by its run); `--resume`: the points whose folder holds a
    finished run are read back, not run again, and the others continue where they stopped.
    Fills `done` as the sequential sweep does."""
    import json
    import subprocess
    import tempfile

    from specc.fit import FitResult

    def finished(name: str) -> bool:
        folder = Path(args.out) / name
        return ((folder / "history.json").is_file() and (folder / "model.keras").is_file()
                and not (folder / ".specc-resume").exists())

    def read_back(name: str, overrides: tuple) -> None:
        import specc

        folder = Path(args.out) / name
        history = json.loads((folder / "history.json").read_text())
        graph = specc.lower(specc.load(spec_file(args.spec), overrides=overrides,
                                       limits=options.limits), args.via)
        done.append(({o.dotted: o.choices[0].text for o in overrides},
                     FitResult(history, [], folder),
                     graph.term_names))

    todo = [(n, o) for n, o in runs if not (args.resume and finished(n))]
    for name, overrides in runs:
        if (name, overrides) not in todo:
            print(f"== run {name}: finished before, read back", flush=True)
    if args.jobs <= 1:
        for name, overrides in runs:
            if (name, overrides) not in todo:
                read_back(name, overrides)
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "specc", *args._argv, "--jobs", "1"]
    waiting, running, failed = list(todo), [], 0
    while waiting or running:
        while waiting and len(running) < args.jobs:
            name, overrides = waiting.pop(0)
            print(f"== run {name}: started", flush=True)
            log = tempfile.TemporaryFile()       # a full pipe would stall a child
            running.append((name, log, subprocess.Popen(
                base, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, SWEEP_POINT: name})))
        name, log, proc = running.pop(0)
        proc.wait()
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
        log.close()
        print(f"\n== run {name} (exit {proc.returncode}) ==\n{text.rstrip()}", flush=True)
        failed = failed or proc.returncode
    if failed:
        return failed
    for name, overrides in runs:
        read_back(name, overrides)
    return 0


def _fit_one(args: argparse.Namespace, options: Options, out: str,
             done: list | None = None) -> int:
    import specc

    spec = specc.load(spec_file(args.spec), overrides=options.overrides, limits=options.limits)
    if args.drop_penalties:
        # Same model, every rate 0: the terms vanish, the penalized tensors stay measurable.
        def zero(clause):
            return clause.model_copy(update={k: 0.0 for k in ("rate", "l1", "l2")
                                             if isinstance(getattr(clause, k, None), float)
                                             or hasattr(getattr(clause, k, None), "schedule")})
        spec = spec.model_copy(update={"penalties": [zero(c) for c in spec.penalties],
                                       "weight_penalties": [zero(c) for c in
                                                            spec.weight_penalties],
                                       "pair_penalties": [zero(c) for c in
                                                          spec.pair_penalties]})
    graph = specc.lower(spec, args.via)
    from specc.fit_options import read_data, training_options   # no NumPy yet

    if getattr(args, "_specc_spill", None) is None:   # tables over --max-data: mapped files
        import atexit
        import shutil
        import tempfile

        args._specc_spill = tempfile.mkdtemp(prefix="specc-data-")
        atexit.register(shutil.rmtree, args._specc_spill, True)
    fit_options = training_options(spec, args, spill=args._specc_spill)
    fit_options.check()
    arrays = read_data(graph, fit_options)            # refused here, before Keras starts
    from specc.fit import Diverged, fit               # NumPy, not Keras

    start_backend(options)
    if getattr(args, "_specc_strategy", None) is None:     # once per process (a sweep)
        args._specc_strategy = _strategy(args)
    strategy, share = args._specc_strategy
    try:
        result = fit(graph, out, replace(fit_options, share=share), strategy, arrays)
    except Diverged as exc:
        print(f"specc: error: {exc}", file=sys.stderr)
        return 1
    final = {k: v[-1] for k, v in result.history.items()}
    print("\nfinal epoch: " + ", ".join(f"{k}={v:.6g}" for k, v in final.items()))
    if share is None or share[0] == 0:     # several processes: process 0 speaks for all
        for measure in result.measures:
            print(measure)
    best = ", best.keras" if fit_options.checkpoint else ""
    print(f"wrote {out}/: history.csv, history.json, tensorboard/, model.keras{best}, losses.png")
    if done is not None:
        done.append(({o.dotted: o.choices[0].text for o in options.overrides}, result,
                     graph.term_names))
    return 0
