"""Command line: `specc validate | schema | build | golden | ...`.

Exit codes: 0 success, 1 a spec is invalid (or a golden check failed), 2 usage error.
Every command reads the project configuration ([tool.specc] in the nearest pyproject.toml,
specc.config) into an Options object, its flags over it, and passes it on. Keras is imported
inside the commands that build, never on the validation path, and only after everything that
can be checked without it (the spec, paths, tools, installed extras) has been: a command that
refuses does so before paying for TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Final, Sequence

from specc.config import Options
from specc.errors import Diagnostic, SpecError, UsageError
from specc.penalties import VIAS

SPEC_SUFFIXES: Final = (".yaml", ".yml")


def spec_files(paths: Sequence[str]) -> list[str]:
    """Files as given; folders searched recursively for *.yaml / *.yml, sorted."""
    found: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            hits = sorted(str(f) for f in path.rglob("*") if f.suffix in SPEC_SUFFIXES
                          and f.is_file())
            if not hits:
                raise UsageError(f"{p}: no *.yaml or *.yml files in this folder")
            found.extend(hits)
        elif path.exists():
            found.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder")
    return found


def spec_file(path: str) -> str:
    """The one spec file a command compiles: a missing file or a folder is a usage error,
    worded as for `validate`."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{path}: is a folder (give one spec file)")
    if not p.exists():
        raise UsageError(f"{path}: no such file or folder")
    return path


def _render(diags: list[Diagnostic], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{"file": d.file, "line": d.line, "column": d.column,
                            "severity": d.severity, "code": d.code, "message": d.message,
                            **({"notes": [{"file": n.file, "line": n.line, "column": n.column,
                                           "message": n.message} for n in d.notes]}
                               if d.notes else {})}
                           for d in diags], indent=2, ensure_ascii=False)
    if fmt == "github":
        def esc(s: str) -> str:
            return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

        def prop(s: str) -> str:     # a property value also escapes ':' and ','
            return esc(s).replace(":", "%3A").replace(",", "%2C")
        return "\n".join(f"::{d.severity} file={prop(d.file)},line={d.line},col={d.column},"
                         f"title={prop(f'specc [{d.code}]')}::{esc(d.message)}" for d in diags)
    return "\n".join(d.render() for d in diags)


def cmd_validate(args: argparse.Namespace, options: Options) -> int:
    from specc.validation import validate_paths

    files = spec_files(args.paths)
    diags = validate_paths(files, jobs=args.jobs, overrides=options.overrides,
                           limits=options.limits)
    if diags or args.format == "json":
        out = _render(diags, args.format)
        if out:
            print(out)
    errors = [d for d in diags if d.severity == "error"]
    warned = len(diags) - len(errors)
    if args.format == "text":
        bad = len({d.notes[0].file if d.file.startswith("--set ") and d.notes else d.file
                   for d in errors})    # an override's error: the spec of its note
        also = f" ({warned} warning{'s' * (warned != 1)})" if warned else ""
        print(f"{len(errors)} error{'s' * (len(errors) != 1)} in {bad} of {len(files)} file"
              f"{'s' * (len(files) != 1)}{also}" if errors else
              f"{len(files)} spec file{'s' * (len(files) != 1)} valid{also}", file=sys.stderr)
    return 1 if errors or (options.strict and warned) else 0


def _schema_text() -> str:
    from specc.spec.model import json_schema

    return json.dumps(json_schema(), indent=1, ensure_ascii=False) + "\n"


def cmd_schema(args: argparse.Namespace, options: Options) -> int:
    # main imported the configured plugins and --plugin's: their layer types join the schema
    text = _schema_text()
    if args.output:
        from specc.artifacts import write_atomic

        write_atomic(args.output, text.encode())
    else:
        sys.stdout.write(text)
    return 0


def cmd_build(args: argparse.Namespace, options: Options) -> int:
    import specc
    from specc.artifacts import check_output_path, save_model
    from specc.explain import composition

    spec = spec_file(args.spec)
    if args.output:
        check_output_path(args.output, [args.spec])
    graph = specc.lower(specc.load(spec, overrides=options.overrides, limits=options.limits),
                        args.via)
    start_backend(options)
    from specc.runtime import emit
    from specc.runtime.summary import summary_text

    model = emit(graph)
    print(summary_text(model))
    print()
    print("\n".join(composition(graph)))
    if args.output:
        save_model(model, args.output)
        print(f"\nwrote {args.output}")
    return 0


def _shape_arg(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes separated by commas, e.g. 96,96,3")
    if not shape or any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: positive sizes, e.g. 96,96,3")
    return shape


def cmd_import(args: argparse.Namespace, options: Options) -> int:
    """A .keras file or a keras.applications architecture -> a spec (and its weights)."""
    from specc import importer
    from specc.artifacts import check_output_path

    if args.list:
        start_backend(options)
        print("\n".join(importer.applications()))
        return 0
    if (args.model is None) == (args.application is None):
        raise UsageError("give a MODEL.keras file or --application NAME (one of them)")
    if args.model is not None and (args.input_shape or args.classes is not None):
        raise UsageError("--input-shape and --classes go with --application")
    if args.output is None and args.weights:
        raise UsageError("--weights writes a file beside the spec: give -o SPEC.yaml")
    if args.output is not None:
        if not args.output.endswith((".yaml", ".yml")):
            raise UsageError(f"{args.output}: the spec file must end in .yaml or .yml")
        check_output_path(args.output, [args.model] if args.model else [], suffix=None)
        if args.weights:
            check_output_path(importer.weights_path(args.output), [args.model] if args.model
                              else [], suffix=None)
    if args.model is not None and not Path(args.model).is_file():
        raise UsageError(f"{args.model}: no such file" if not Path(args.model).exists()
                         else f"{args.model}: is not a file (give a saved .keras model)")
    start_backend(options)
    source = args.model or f"keras.applications.{args.application}(weights=None)"
    try:
        if args.model is not None:
            model = importer.keras_file(args.model)
        else:
            model = importer.application(args.application, args.input_shape, args.classes)
        imported = importer.convert(model, args.name)
        import keras

        header = [f"Written by `specc import` from {source}, Keras {keras.__version__}.",
                  *imported.notes[:20],
                  *([f"... and {len(imported.notes) - 20} more notes"]
                    if len(imported.notes) > 20 else [])]
        if args.output is not None:
            written = importer.write(imported, args.output, header, with_weights=args.weights,
                                     limits=options.limits)
        else:
            text = importer.validated_text(imported, header, limits=options.limits)
    except importer.ImportRefused as exc:
        print(f"specc: cannot import {source}: {len(exc.lines)} part"
              f"{'s' * (len(exc.lines) != 1)} without a spec form (nothing written):",
              file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(text)
        return 0
    if args.check:
        import specc

        built = specc.build(written[0])
        if not args.weights:
            importer.assign(built, imported)
        report = importer.compare(model, built, imported.in_spec)
        print(f"check: structure {'same' if report['structure'] else 'DIFFERENT'}, "
              f"parameters {report['params'][0]:,} -> {report['params'][1]:,}, outputs "
              f"max |a - b| / max |a| = {report['max_rel_diff']:.3g}")
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_golden(args: argparse.Namespace, options: Options) -> int:
    """Check (or with --update write) each spec's golden summary and loss values."""
    import specc
    from specc import golden

    directory = _shown(options.golden_dir)
    if directory is not None and not args.update and not Path(directory).is_dir():
        raise UsageError(f"golden folder {directory}: no such folder")
    files: list[str] = []
    owners: dict[Path, str] = {}                  # golden summary file -> the spec it is for
    for f in spec_files(args.specs):
        # the names clash or not whatever the backend: judge them without starting Keras
        summary_path = golden.golden_paths(f, directory, "tensorflow")[0]
        key = summary_path.resolve()
        if key not in owners:
            owners[key] = f
            files.append(f)
        elif Path(owners[key]).resolve() != Path(f).resolve():   # the same spec twice: once
            raise UsageError(f"{owners[key]} and {f} would share the golden files "
                             f"{summary_path}")
    failed = 0
    valid = []
    for f in files:                               # every spec validated before Keras starts
        try:
            specc.load(f, overrides=options.overrides, limits=options.limits)
        except SpecError as exc:
            print(_render(list(exc.diagnostics), "text"))
            failed += 1
            continue
        valid.append(f)
    if valid:
        start_backend(options)
    for f in valid:
        try:
            settings = {"overrides": options.overrides, "limits": options.limits}
            result = (golden.update(f, directory, **settings) if args.update
                      else golden.check(f, directory, **settings))
        except SpecError as exc:
            print(_render(list(exc.diagnostics), "text"))
            failed += 1
            continue
        print(result.report(), flush=True)
        failed += not result.ok
    n = len(files)
    print(f"{failed} of {n} spec{'s' * (n != 1)} failed" if failed else
          f"{n} spec{'s' * (n != 1)}: golden files "
          f"{'up to date' if args.update else 'match'}",
          file=sys.stderr)
    return 1 if failed else 0


def cmd_explain(args: argparse.Namespace, options: Options) -> int:
    import specc
    from specc.explain import explain

    spec = specc.load(spec_file(args.spec), overrides=options.overrides, limits=options.limits)
    print(explain(specc.lower(spec, args.via), options.limits))
    return 0


def cmd_expand(args: argparse.Namespace, options: Options) -> int:
    """Print the flat spec: blocks, repeats, `${...}` and shares resolved (no TensorFlow)."""
    import specc
    from specc.expand import to_yaml

    spec = specc.load(spec_file(args.spec), overrides=options.overrides, limits=options.limits)
    sys.stdout.write(to_yaml(spec.document.data))
    return 0


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


def cmd_fit(args: argparse.Namespace, options: Options) -> int:
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
                     [t.name for t in graph.terms] + [w.name for w in graph.weight_terms]))

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
                                                            spec.weight_penalties]})
    graph = specc.lower(spec, args.via)
    from specc.fit import Diverged, FitOptions, fit, read_data   # NumPy, not Keras

    if getattr(args, "_specc_spill", None) is None:   # tables over --max-data: mapped files
        import atexit
        import shutil
        import tempfile

        args._specc_spill = tempfile.mkdtemp(prefix="specc-data-")
        atexit.register(shutil.rmtree, args._specc_spill, True)
    from specc.fit import training_options

    fit_options = training_options(spec, args, spill=args._specc_spill)
    fit_options.check()
    arrays = read_data(graph, fit_options)            # refused here, before Keras starts
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
    for measure in result.measures:
        print(measure)
    if share is not None and share[1] > 1 and graph.terms:
        print("(the measures of the penalized tensors are not taken with several processes: "
              "each holds only its share of the data)")
    best = ", best.keras" if fit_options.checkpoint else ""
    print(f"wrote {out}/: history.csv, history.json, tensorboard/, model.keras{best}, losses.png")
    if done is not None:
        done.append(({o.dotted: o.choices[0].text for o in options.overrides}, result,
                     [t.name for t in graph.terms] + [w.name for w in graph.weight_terms]))
    return 0


def cmd_plot(args: argparse.Namespace, options: Options) -> int:
    import specc
    from specc.artifacts import check_output_path
    from specc.plot import missing_tools, plot

    spec = spec_file(args.spec)
    problem = missing_tools()
    if problem:
        print(f"specc: error: {problem}", file=sys.stderr)
        return 1
    check_output_path(args.output, [args.spec], suffix=None)
    graph = specc.lower(specc.load(spec, overrides=options.overrides, limits=options.limits),
                        args.via)
    start_backend(options)
    from specc.runtime import emit

    plot(emit(graph, compile=False), graph, args.output)
    print(f"wrote {args.output}")
    return 0


def _data_size(text: str) -> int:
    from specc.data import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_plugin(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import this Python module first (it registers penalty kinds or "
                        "layer types), after the configuration's plugins; repeatable")


def _add_budget(p: argparse.ArgumentParser) -> None:
    """--max-params / --max-activation: the size budget every spec is validated against."""
    from specc.budget import MAX_ACTIVATION, MAX_PARAMS, parse_count

    p.add_argument("--max-params", type=parse_count, metavar="N", help=(
        f"refuse specs with more parameters (default {MAX_PARAMS:,}; 250M, 1e9 and "
        "1_000_000 are understood)"))
    p.add_argument("--max-activation", type=parse_count, metavar="N", help=(
        f"refuse specs with a tensor of more values per sample (default {MAX_ACTIVATION:,})"))


def _add_spec(p: argparse.ArgumentParser, via_help: str = "force one strategy on every "
              "penalty clause", sweep: bool = False) -> None:
    """SPEC, --via and --plugin: what every command that compiles a spec takes."""
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--via", choices=VIAS, help=via_help)
    _add_plugin(p)
    _add_budget(p)
    _add_set(p, sweep)


def _add_set(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    """--set PATH=VALUE (specc.overrides), repeatable."""
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="set",
                   help="override a value by name before validation: dense4.units=128, "
                        "dense4_energy.rate=1e-3, optimizer.learning_rate=3e-4, seed=3 "
                        "(VALUE is YAML); repeatable" + (
                            "; a comma list (rate=1e-4,1e-3) sweeps: one run per value "
                            "(the product of several lists) in a sub-folder of --out, and "
                            "sweep.csv + sweep.png comparing them" if sweep else ""))


class _HelpFormatter(argparse.HelpFormatter):
    """--help shows each option's default, unless it has none or its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or not action.option_strings
                or action.default in (None, False, [], argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


#: Commands that import Keras, and with it TensorFlow.
_KERAS_COMMANDS: Final = frozenset({"build", "fit", "plot", "golden", "import"})


def _import_quietly(name: str) -> None:
    """Import a module with file descriptor 2 sent to a temporary file.

    TensorFlow writes its start-up lines (`cudart_stub`, `cuInit`, the oneDNN notice, absl's
    "before InitializeLog") straight to fd 2 while it loads, before TF_CPP_MIN_LOG_LEVEL
    applies. What was written is shown only if the import fails; the command that needs the
    module then reports the failure itself.
    """
    import importlib
    import tempfile

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:                       # no standard error to protect
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = False
        try:
            importlib.import_module(name)
            tf = sys.modules.get("tensorflow")
            if tf is not None:            # device discovery logs too (cuInit); do it here
                tf.config.list_physical_devices()
        except Exception:                 # an ImportError, or a backend that fails to start
            failed = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        if failed:
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))


#: Keras's backends and the module each needs.
BACKENDS: Final = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
#: What each Keras command needs installed besides Keras, NumPy and the backend's package
#: (module, the extra or package that brings it).
_NEEDS: Final = {"fit": ("matplotlib",), "plot": ("pydot",)}


def _extra_for(backend: str) -> str:
    return f"specc-keras[{backend}]"


def backend_name(args: argparse.Namespace, options: Options) -> str | None:
    """The Keras backend a command runs on: --backend, else KERAS_BACKEND, else the
    configuration's `backend`; None leaves Keras's own setting (tensorflow unless changed).
    Refused in one line when unknown or when Keras already runs on another in this process."""
    name = getattr(args, "backend", None)
    if name is None:
        name = os.environ.get("KERAS_BACKEND")
        if name is not None and name not in BACKENDS:
            raise UsageError(f"KERAS_BACKEND={name}: not a backend specc runs on "
                             f"(choose from {', '.join(BACKENDS)})")
    if name is None:
        name = options.backend
    if name is not None and not _findable(BACKENDS[name]):
        cpu = (" (for a CPU-only torch, first: pip install torch --index-url "
               "https://download.pytorch.org/whl/cpu)" if name == "torch" else "")
        raise UsageError(f"backend {name}: the {BACKENDS[name]} package is not installed "
                         f"(pip install \"{_extra_for(name)}\"{cpu})")
    running = sys.modules.get("keras")
    if name is not None and running is not None and running.backend.backend() != name:
        raise UsageError(f"backend {name}: Keras already runs on {running.backend.backend()} "
                         "in this process (the backend is chosen once, before Keras starts)")
    return name


def check_installed(command: str, backend: str | None) -> None:
    """Refuse in one line, naming the extra to install, when a command needs a package this
    install lacks (the plain install is validation only: no Keras, no NumPy). Nothing is
    imported: importlib.util.find_spec only looks."""
    if "keras" in sys.modules:            # already running (a test, a notebook)
        return
    extra = _extra_for(backend or "tensorflow")
    needs = ["keras", "numpy", *(("tensorflow",) if backend in (None, "tensorflow") else ()),
             *_NEEDS.get(command, ())]
    for module in needs:
        if not _findable(module):
            raise UsageError(f"specc {command} needs {module}, which this install lacks "
                             f"(the plain install is validation only): pip install \"{extra}\"")


def start_backend(options: Options) -> None:
    """Import Keras (and its backend) now that the command has checked everything it can
    without it; unless --verbose, what TensorFlow, JAX or PyTorch write to standard error
    while starting (absl, oneDNN, cudart, cuInit lines) is kept away, on every backend."""
    if options.verbose or "keras" in sys.modules:
        if "keras" not in sys.modules:
            import keras  # noqa: F401
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    # TensorFlow is imported by Keras on any backend sooner or later (data adapters,
    # TensorBoard): start it in the quiet window too, then the backend, then Keras.
    for module in ("tensorflow", *(() if backend == "tensorflow" else (BACKENDS.get(backend,
                                                                                   backend),)),
                   "keras"):
        if module == "keras" or _findable(module):
            _import_quietly(module)


def _findable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def select_backend(args: argparse.Namespace, options: Options) -> str | None:
    """Set KERAS_BACKEND for the command (before Keras is imported); the backend's name."""
    if getattr(args, "command", None) not in _KERAS_COMMANDS:
        return None
    name = backend_name(args, options)
    if name is not None:
        os.environ["KERAS_BACKEND"] = name
    return name


def _quiet_tensorflow(args: argparse.Namespace) -> None:
    """Unless --verbose: log levels that keep TensorFlow's and XLA's C++ logging and
    Python warnings (retracing) quiet; the start-up lines are handled by start_backend."""
    if getattr(args, "verbose", False):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    for name in ("tensorflow", "absl", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _shown(path: Path | None) -> str | None:
    """A configured path as a user would write it: relative to the current folder when it is
    inside it."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_paths(args: argparse.Namespace) -> list[str]:
    """The paths a command reads: where its configuration is looked for."""
    for name in ("paths", "specs"):
        if getattr(args, name, None):
            return list(getattr(args, name))
    for name in ("spec", "model", "output"):
        if getattr(args, name, None):
            return [getattr(args, name)]
    return []


def options_for(args: argparse.Namespace) -> Options:
    """The project configuration for this command, its flags over it (specc.config)."""
    from specc import config

    configured = config.load(_read_paths(args), config=getattr(args, "config", None),
                             isolated=getattr(args, "no_config", False))
    golden_dir = getattr(args, "dir", None)
    return configured.with_flags(
        plugins=tuple(args.plugin) if getattr(args, "plugin", None) else None,
        max_params=getattr(args, "max_params", None),
        max_activation=getattr(args, "max_activation", None),
        golden_dir=Path(golden_dir) if golden_dir is not None else None,
        strict=getattr(args, "strict", None),
        backend=getattr(args, "backend", None),
        verbose=getattr(args, "verbose", False) or None)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specc", description=(
        "A declarative model-spec compiler for Keras 3: validate YAML specs, export their "
        "schema, build them into compiled models."))
    from specc import __version__

    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check spec files without importing TensorFlow")
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders")
    p.add_argument("--format", choices=("text", "json", "github"), default="text",
                   help="text: file:line:col: error: message [code]; github: annotations")
    p.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                   help="worker processes (default: 0, one per core when there are many "
                        "files; 1: none)")
    p.add_argument("--strict", action=argparse.BooleanOptionalAction, default=None,
                   help="warnings fail too (exit 1); --no-strict: they do not (default: the "
                        "configuration's `strict`, else off)")
    _add_plugin(p)
    _add_budget(p)
    _add_set(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    p.add_argument("-o", "--output", help="write it to this file instead")
    _add_plugin(p)
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("build", help="compile a spec; print the summary and the loss terms")
    _add_spec(p)
    p.add_argument("-o", "--output", help="write the model here (.keras), atomically")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("fit", help="train a spec; the loss broken down by term, with plots")
    _add_spec(p, sweep=True)
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
    p.add_argument("--max-data", type=_data_size, default=None, metavar="SIZE",
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
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("plot", help="draw the layer graph with the penalty taps marked")
    _add_spec(p)
    p.add_argument("-o", "--output", default="model.png", help="image file (.png, .svg, .pdf)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("explain", help="the whole objective as a formula (no TensorFlow)")
    _add_spec(p, "show the plan for one forced strategy")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("expand", help="print the flat spec: blocks, repeats and shares "
                       "resolved (no TensorFlow)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import this module first (custom penalty kinds or layer types); "
                        "repeatable")
    p.add_argument("spec", metavar="SPEC")
    _add_set(p)
    p.set_defaults(func=cmd_expand)

    p = sub.add_parser("import", help="write a spec (and its weights) that rebuilds a Keras "
                       "model or a keras.applications architecture")
    p.add_argument("model", nargs="?", metavar="MODEL.keras", help="a saved Keras model "
                   "(read with safe_mode=True after its config is checked)")
    p.add_argument("--application", metavar="NAME", help="a keras.applications architecture, "
                   "built with weights=None (nothing is downloaded); --list names them")
    p.add_argument("--input-shape", type=_shape_arg, metavar="H,W,C",
                   help="with --application: the input shape")
    p.add_argument("--classes", type=int, metavar="N", help="with --application: classes")
    p.add_argument("-o", "--output", metavar="SPEC.yaml",
                   help="write the spec here, atomically (default: print it)")
    p.add_argument("--weights", action="store_true", help="also write the model's weights "
                   "beside the spec (SPEC.weights.h5) and refer to them (`weights:`)")
    p.add_argument("--name", help="the spec's model name (default: the model's)")
    p.add_argument("--check", action="store_true", help="then build the spec and compare it "
                   "with the model: structure, parameters, outputs on a random batch")
    p.add_argument("--list", action="store_true", help="list keras.applications "
                   "architectures and exit")
    _add_plugin(p)
    _add_budget(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("golden", help="check a spec's model summary and loss values against "
                       "golden files (or write them with --update)")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files or folders")
    p.add_argument("--dir", metavar="DIR", help="where the golden files are: "
                   "DIR/<spec>.summary.txt, DIR/<spec>.losses.json (default: the "
                   "configuration's golden_dir, else next to each spec)")
    p.add_argument("--update", action="store_true",
                   help="write the golden files instead of checking them")
    _add_plugin(p)
    _add_budget(p)
    _add_set(p)
    p.set_defaults(func=cmd_golden)
    for name, command in sub.choices.items():     # every command: --verbose, defaults in --help
        command.formatter_class = _HelpFormatter
        if name in _KERAS_COMMANDS:
            command.add_argument("--backend", choices=tuple(BACKENDS), help=(
                "Keras backend to run on (default: KERAS_BACKEND, else Keras's own "
                "setting, tensorflow unless changed)"))
        command.add_argument("--verbose", action="store_true",
                             help="show TensorFlow's start-up log lines (hidden by default)")
        command.add_argument("--config", metavar="PYPROJECT", help=(
            "read [tool.specc] from this pyproject.toml (default: the nearest one, from the "
            "specs' folder up)"))
        command.add_argument("--no-config", action="store_true",
                             help="ignore any pyproject.toml: defaults and flags only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options = options_for(args)
        backend = select_backend(args, options)
        if args.command in _KERAS_COMMANDS:
            check_installed(args.command, backend)
    except SpecError as exc:        # the project configuration: a usage problem, located
        print(_render(list(exc.diagnostics), "text"), file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"specc: error: {exc}", file=sys.stderr)
        return 2
    _quiet_tensorflow(args)
    from specc.config import plugins_imported
    from specc.overrides import parse_all

    try:
        overrides = parse_all(getattr(args, "set", []), sweep=args.command == "fit")
        options = replace(options, overrides=tuple(overrides))
        with plugins_imported(options):
            code = args.func(args, options)
        sys.stdout.flush()
        return code
    except BrokenPipeError:         # `specc explain spec.yaml | head`: the reader left
        _drop_stdout()
        return 141                  # as a Unix tool killed by SIGPIPE (128 + 13)
    except SpecError as exc:
        print(_render(list(exc.diagnostics), getattr(args, "format", "text")))
        return 1
    except UsageError as exc:
        print(f"specc: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:          # a file specc had to read or write: no traceback
        print(f"specc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        from specc.artifacts import Terminated

        print("specc: interrupted", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


def _drop_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush at exit does
    not raise BrokenPipeError again (Python's documented recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):   # no real stdout (captured): nothing will be flushed
        pass


if __name__ == "__main__":
    sys.exit(main())
