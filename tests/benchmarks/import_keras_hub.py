"""`specc import` of keras-hub backbones built from a config (no preset, no download).

    python tests/benchmarks/import_keras_hub.py                       # all backbones below
    python tests/benchmarks/import_keras_hub.py BertBackbone ViTBackbone
    python tests/benchmarks/import_keras_hub.py --plugin tests/plugins/keras_hub_layers.py

Needs keras-hub (`pip install --no-deps keras-hub` plus the small packages it imports:
regex, tokenizers, sentencepiece, kagglehub, kagglesdk, tqdm; it is no dependency of specc).
Each backbone is built at a tiny size (a few thousand weights) from its constructor's
arguments, then `specc.importer.convert` runs on it (folding as `specc import` does). A
refused backbone prints the importer's lines, one per layer (as they are; a line for another
layer of the same class is counted, not repeated). An
imported one is written and validated in a temporary folder, built with `specc.build`, given
the backbone's weights and compared: layers with weights (name, class, shapes), parameter
counts (Keras's, and the one `specc validate` computes from the spec), and the outputs on
one batch of 2 (token ids, a padding mask with padded positions, or images), max |a - b| /
max |a| <= 1e-5.

Each imported backbone is also saved as a functional model
(`keras.Model(backbone.inputs, backbone.outputs)`: a backbone's own .keras file holds only its
constructor's arguments), imported with `specc import FILE --weights` and built from that
spec, outputs compared the same way.

`--plugin FILE` imports a plugin first (as `specc import --plugin` does): with
`tests/plugins/keras_hub_layers.py`, which registers keras-hub's layers with
`specc.register_layer`, the backbones made of those layers import too. Prints `N of M`.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Final

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Output agreement asked of an imported backbone (relative to the largest output value).
RTOL: Final = 1e-5
_TEXT: Final = dict(vocabulary_size=50, num_layers=2, hidden_dim=8, intermediate_dim=16)


def backbones() -> dict[str, Callable[[], Any]]:
    """Name -> a function building the backbone at a tiny size (keras_hub imported here)."""
    import keras_hub

    m = keras_hub.models
    return {
        "BertBackbone": lambda: m.BertBackbone(**_TEXT, num_heads=2, max_sequence_length=16),
        "DistilBertBackbone": lambda: m.DistilBertBackbone(**_TEXT, num_heads=2,
                                                           max_sequence_length=16),
        "RobertaBackbone": lambda: m.RobertaBackbone(**_TEXT, num_heads=2,
                                                     max_sequence_length=16),
        "XLMRobertaBackbone": lambda: m.XLMRobertaBackbone(**_TEXT, num_heads=2,
                                                           max_sequence_length=16),
        "AlbertBackbone": lambda: m.AlbertBackbone(**_TEXT, num_heads=2, embedding_dim=4,
                                                   max_sequence_length=16),
        "ElectraBackbone": lambda: m.ElectraBackbone(vocab_size=50, num_layers=2, num_heads=2,
                                                     hidden_dim=8, embedding_dim=4,
                                                     intermediate_dim=16,
                                                     max_sequence_length=16),
        "FNetBackbone": lambda: m.FNetBackbone(**_TEXT, max_sequence_length=16),
        "GPT2Backbone": lambda: m.GPT2Backbone(**_TEXT, num_heads=2, max_sequence_length=16),
        "OPTBackbone": lambda: m.OPTBackbone(**_TEXT, num_heads=2, max_sequence_length=16),
        "BartBackbone": lambda: m.BartBackbone(**_TEXT, num_heads=2, max_sequence_length=16),
        "LlamaBackbone": lambda: m.LlamaBackbone(**_TEXT, num_query_heads=2,
                                                 num_key_value_heads=1),
        "MistralBackbone": lambda: m.MistralBackbone(**_TEXT, num_query_heads=2,
                                                     num_key_value_heads=1),
        "GemmaBackbone": lambda: m.GemmaBackbone(**_TEXT, num_query_heads=2,
                                                 num_key_value_heads=1, head_dim=4),
        "ResNetBackbone": lambda: m.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 8],
            stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2],
            block_type="basic_block", image_shape=(32, 32, 3)),
        "ResNetV2Backbone": lambda: m.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 8],
            stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2],
            block_type="bottleneck_block", use_pre_activation=True, image_shape=(32, 32, 3)),
        "VGGBackbone": lambda: m.VGGBackbone(stackwise_num_repeats=[1, 1],
                                             stackwise_num_filters=[4, 8],
                                             image_shape=(16, 16, 3)),
        "DenseNetBackbone": lambda: m.DenseNetBackbone(stackwise_num_repeats=[1, 1],
                                                       growth_rate=4,
                                                       image_shape=(32, 32, 3)),
        "XceptionBackbone": lambda: m.XceptionBackbone(
            stackwise_conv_filters=[[4, 8], [8, 16]], stackwise_pooling=[True, False],
            image_shape=(32, 32, 3)),
        "CSPNetBackbone": lambda: m.CSPNetBackbone(
            stem_filters=8, stem_kernel_size=3, stem_strides=1, stackwise_depth=[1, 1],
            stackwise_strides=[1, 2], stackwise_num_filters=[8, 16], block_type="dark_block",
            stage_type="dark", image_shape=(32, 32, 3)),
        "ViTBackbone": lambda: m.ViTBackbone(image_shape=(16, 16, 3), patch_size=4,
                                             num_layers=2, num_heads=2, hidden_dim=8,
                                             mlp_dim=16),
        "DeiTBackbone": lambda: m.DeiTBackbone(image_shape=(16, 16, 3), patch_size=4,
                                               num_layers=2, num_heads=2, hidden_dim=8,
                                               intermediate_dim=16),
    }


def summary(lines: list[str]) -> str:
    """The importer's refusal lines as they are, one per class: a line that differs from an
    earlier one only in the layer's name is counted, not repeated."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        key = re.sub(r"^(layer|operation) '[^']*'", r"\1 ...", line)
        groups.setdefault(key, []).append(line)
    return "\n    ".join(same[0] + (f"  [and {len(same) - 1} more like it]" if len(same) > 1
                                     else "") for same in groups.values())


def batch(model: Any, seed: int = 0) -> dict[str, Any]:
    """One batch of 2 per input, by name: token ids in [1, 50) (the vocabulary), segment ids
    in {0, 1}, padding masks 1 then 0 (the second sample's last 5 positions padded), images
    and other floats standard normal; an unknown length is 16."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for t in model.inputs:
        shape = (2, *[d or 16 for d in t.shape[1:]])
        name, dtype = t.name, str(t.dtype)
        if not dtype.startswith("int"):
            out[name] = rng.standard_normal(shape).astype(dtype)
        elif "mask" in name:
            mask = np.ones(shape, dtype)
            mask[1, -5:] = 0
            out[name] = mask
        else:
            out[name] = rng.integers(0, 2 if "segment" in name else 50, shape).astype(dtype)
            out[name][:, 0] = 1
    return out


def worst_difference(source: Any, built: Any) -> float:
    """max |a - b| / max |a| over the outputs of both models on one batch (batch())."""
    import keras
    import numpy as np

    xs = batch(source)
    struct = getattr(source, "_inputs_struct", None)
    ordered = [xs[t.name] for t in source.inputs]
    fed = xs if isinstance(struct, dict) else ordered if len(ordered) > 1 else ordered[0]
    got = keras.tree.flatten(source(fed, training=False))
    mine = [xs.get(t.name) for t in built.inputs]
    if any(x is None for x in mine):              # the spec renamed its inputs: in order
        mine = ordered
    mine = keras.tree.flatten(built(mine if len(mine) > 1 else mine[0], training=False))
    worst = 0.0
    for a, b in zip(got, mine):
        a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
        if a.shape != b.shape:
            return math.inf
        worst = max(worst, float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(a))), 1e-30))
    return worst if len(got) == len(mine) else math.inf


def through_file(model: Any, folder: Path, plugins: list[str]) -> float:
    """`specc import FILE --weights` of the backbone saved as a functional model (its own
    .keras file holds only its constructor's arguments), then `specc.build` of that spec: the
    worst output difference against the backbone (inf when the command fails)."""
    import contextlib
    import io

    import keras

    import specc
    from specc.cli import main

    saved = folder / f"{model.name}_functional.keras"
    keras.Model(model.inputs, model.outputs, name=model.name).save(saved)
    spec = folder / f"{model.name}_file.yaml"
    argv = ["import", str(saved), "-o", str(spec), "--weights"]
    for plugin in plugins:
        argv += ["--plugin", str(Path(plugin).resolve())]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if main(argv) != 0:
            return math.inf
    return worst_difference(model, specc.build(spec))


def round_trip(make: Callable[[], Any], folder: Path,
               plugins: list[str]) -> tuple[bool, str]:
    import keras

    import specc
    from specc import importer
    from specc.budget import Limits, measure_spec

    keras.backend.clear_session()
    model = make()
    try:
        imported = importer.convert(model, fold=True)
    except importer.ImportRefused as exc:
        return False, "refused:\n    " + summary(exc.lines)
    spec_path = folder / f"{model.name}.yaml"
    importer.write(imported, spec_path, limits=Limits(max_params=10**9))
    loaded = specc.load(spec_path)
    counted = measure_spec(loaded)                 # what validation counts, without Keras
    built = specc.build(loaded)
    importer.assign(built, imported)
    report = importer.compare(model, built, imported.in_spec, renamed=imported.renamed)
    problems = []
    if not report["structure"]:
        problems.append("structure differs")
    if report["params"][0] != report["params"][1] or \
            report["trainable"][0] != report["trainable"][1]:
        problems.append(f"parameters {report['params'][0]:,} vs {report['params'][1]:,}")
    if counted.unknown or counted.total_params != report["params"][0]:
        problems.append(f"validation counts {counted.total_params:,} parameters "
                        f"(unknown for {', '.join(counted.unknown) or 'none'}), Keras "
                        f"{report['params'][0]:,}")
    worst = worst_difference(model, built)
    if not worst <= RTOL:
        problems.append(f"outputs differ: {worst:.3g}")
    from_file = through_file(model, folder, plugins)
    if not from_file <= RTOL:
        problems.append(f"`specc import FILE --weights`: outputs differ: {from_file:.3g}")
    detail = (f"imported: {len(imported.data['layers'])} entries, "
              f"{report['params'][1]:,} params (validation counts them too), format {imported.data['specc']}, builds, "
              f"max rel diff {worst:.2g} (through a .keras file: {from_file:.2g})")
    del model, built
    gc.collect()
    return not problems, "; ".join(problems) or detail


def load_plugin(path: str) -> None:
    """Import a plugin as `specc import --plugin FILE` does (its folder on the path)."""
    file = Path(path).resolve()
    sys.path.insert(0, str(file.parent))
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module
    spec.loader.exec_module(module)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="backbones (default: all)")
    parser.add_argument("--plugin", action="append", default=[],
                        help="a plugin .py file to import first (registers layers)")
    args = parser.parse_args(argv)
    try:
        import keras_hub
    except ImportError as exc:
        print(f"keras-hub is not installed ({exc}); see this script's docstring")
        return 2
    for plugin in args.plugin:
        load_plugin(plugin)
    made = backbones()
    names = args.names or list(made)
    ok = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            t0 = time.perf_counter()
            try:
                good, why = round_trip(made[name], Path(folder), args.plugin)
            except Exception as exc:        # report it, go on with the next backbone
                good, why = False, f"error: {type(exc).__name__}: {str(exc)[:300]}"
            ok += good
            print(f"{name:20s} {'ok  ' if good else 'FAIL'} {time.perf_counter() - t0:5.1f} s  "
                  f"{why}", flush=True)
    import keras

    print(f"\n{ok} of {len(names)} keras-hub {keras_hub.__version__} backbones import, build and "
          f"give the same outputs (within {RTOL:g} relative; Keras {keras.__version__}"
          f"{', plugins ' + ', '.join(args.plugin) if args.plugin else ''})")
    return 0 if ok == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
