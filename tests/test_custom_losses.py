"""Custom losses and metrics from plugins, and one-file plugins read from their source: the
validation side (no Keras; tests/test_siamese_contrastive.py builds and trains)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import specc
from specc import config, custom_layers, custom_losses, plugin_source
from specc.errors import SpecError, UsageError

from helpers import PLUGINS, ROOT, SPECS

SIAMESE = SPECS / "siamese_contrastive"
SIAMESE_SPEC = SIAMESE / "siamese_contrastive.yaml"
SIAMESE_PLUGIN = SIAMESE / "siamese_plugin.py"

ONE_OUTPUT = """\
specc: 1
name: m
inputs: {x: {shape: [4]}}
layers:
  - {name: h, type: Dense, units: 3, activation: tanh}
  - {name: out, type: Dense, units: 1, activation: sigmoid}
outputs: [out]
loss: {type: contrastive, margin: 2.0}
metrics: [mae]
"""


@pytest.fixture()
def siamese():
    """The siamese example's one-file plugin, as [tool.specc] plugins names it."""
    with config.plugins_imported(config.Options(plugins=(str(SIAMESE_PLUGIN),))):
        yield


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        specc.loads(text, "t.yaml")
    return [d.render() for d in err.value.diagnostics]


def test_the_siamese_example_validates_without_keras(siamese) -> None:
    spec = specc.load(SIAMESE_SPEC)
    assert spec.loss.type == "contrastive" and spec.loss.arguments() == {"margin": 1.0}
    # read, not imported (in the fast tier conftest also fails any test that imports Keras;
    # in the full run another test of this worker may have imported it already)
    assert plugin_source.is_light("siamese_plugin")
    entry = custom_layers.lookup("EuclideanDistance")
    assert entry is not None and entry.layer == "siamese_plugin:EuclideanDistance"
    from specc.explain import composition

    assert "  task_loss = 1 · contrastive(margin=1)(score)" in composition(specc.lower(spec))


def test_plugins_imported_forgets_what_the_plugin_registered(siamese) -> None:
    assert "contrastive" in custom_losses.registered_names("loss")


def test_nothing_is_left_after_the_block() -> None:
    with config.plugins_imported(config.Options(plugins=(str(SIAMESE_PLUGIN),))):
        pass
    assert "contrastive" not in custom_losses.registered_names("loss")
    assert "EuclideanDistance" not in custom_layers.registered_names()
    assert "siamese_plugin" not in sys.modules and not plugin_source.is_light("siamese_plugin")


def test_arguments_are_validated_with_located_errors(siamese) -> None:
    assert _errors(ONE_OUTPUT.replace("margin: 2.0", "margn: 2.0")) == [
        "t.yaml:8:27: error: unknown key 'margn' (did you mean 'margin'?)  [unknown-key]"]
    assert _errors(ONE_OUTPUT.replace("margin: 2.0", "margin: -1")) == [
        "t.yaml:8:35: error: loss.margin: must be greater than 0 (got -1)  [bad-value]"]
    assert _errors(ONE_OUTPUT.replace("margin: 2.0", "margin: '2'")) == [
        "t.yaml:8:35: error: loss.margin: expected a number, got a string '2'  [bad-type]"]
    assert _errors(ONE_OUTPUT.replace("{type: contrastive, margin: 2.0}", "contrastiv")) == [
        "t.yaml:8:7: error: loss: expected one of the allowed words or a mapping, got a "
        "string 'contrastiv' (did you mean 'contrastive'?)  [bad-type]"]


def test_a_name_alone_takes_the_default_arguments(siamese) -> None:
    spec = specc.loads(ONE_OUTPUT.replace("{type: contrastive, margin: 2.0}", "contrastive"))
    assert spec.loss.arguments() == {"margin": 1.0}


def test_losses_per_output(siamese) -> None:
    text = ONE_OUTPUT.replace("outputs: [out]", "outputs: [out, h]").replace(
        "loss: {type: contrastive, margin: 2.0}",
        "loss: {out: {type: contrastive, margin: 0.5}, h: mse}")
    spec = specc.loads(text)
    assert spec.loss_for("out").arguments() == {"margin": 0.5} and spec.loss_for("h") == "mse"


def test_unknown_names_without_a_plugin_say_where_custom_ones_come_from() -> None:
    note = ("; a custom loss comes from a plugin: --plugin MODULE, [tool.specc] plugins, or an "
            "installed package's `specc.losses` entry point")
    assert _errors(ONE_OUTPUT) == [
        f"t.yaml:8:14: error: loss.type: invalid value 'contrastive' (21 choices; see the "
        f"schema){note}  [bad-value]",
        "t.yaml:8:27: error: unknown key 'margin'  [unknown-key]"]
    assert _errors(ONE_OUTPUT.replace("{type: contrastive, margin: 2.0}", "{out: contrastive}")) \
        == [f"t.yaml:8:13: error: loss.out: expected one of the allowed words or a mapping, got "
            f"a string 'contrastive'{note}  [bad-type]"]
    assert _errors(ONE_OUTPUT.replace("{type: contrastive, margin: 2.0}", "mse")
                   .replace("[mae]", "[within]")) == [
        "t.yaml:9:11: error: metrics[0]: invalid value 'within' (25 choices; see the schema); "
        "a custom metric comes from a plugin: --plugin MODULE, [tool.specc] plugins, or an "
        "installed package's `specc.metrics` entry point  [bad-value]"]
    # a typo of a catalog word keeps its did-you-mean and gets no note
    assert _errors(ONE_OUTPUT.replace("[mae]", "[acuracy]").replace(
        "{type: contrastive, margin: 2.0}", "mse")) == [
        "t.yaml:9:11: error: metrics[0]: invalid value 'acuracy' (did you mean 'accuracy'?) "
        "(25 choices; see the schema)  [bad-value]"]


def test_the_schema_lists_registered_losses_and_metrics() -> None:
    from pydantic import BaseModel

    from specc.spec.model import json_schema

    class Margin(BaseModel):
        margin: float = 1.0

    before = json.dumps(json_schema())
    assert "contrastive" not in before and "within" not in before
    specc.register_loss("contrastive", "m:f", args=Margin)
    specc.register_metric("within", "m:g")
    try:
        schema = json_schema()
    finally:
        custom_losses.unregister("loss", "contrastive")
        custom_losses.unregister("metric", "within")
    model = schema["$defs"]["contrastive"]
    assert model["properties"]["margin"]["default"] == 1.0
    assert "within" in json.dumps(schema["properties"]["metrics"])
    assert json.dumps(json_schema()) == before


def test_the_schema_has_the_plugins_arguments(siamese) -> None:
    schema = json.dumps(specc.spec.model.json_schema())
    assert '"margin"' in schema and "EuclideanDistance" in schema


def test_registration_mistakes_are_refused_at_once() -> None:
    from pydantic import BaseModel

    class Named(BaseModel):
        name: str = "x"

    def fn(y_true, y_pred, k: int = 1):
        return y_pred

    cases = [
        (("loss", "mse", fn), {}, "is a built-in loss"),
        (("metric", "accuracy", fn), {}, "is a built-in metric"),
        (("loss", "two words", fn), {}, "is not a loss name"),
        (("loss", "x", "no_colon"), {}, "is not 'module:attr'"),
        (("loss", "x", 3), {}, "give a function"),
        (("loss", "x", fn), {"args": Named}, "args may not define 'name'"),
        (("loss", "x", lambda y_true, y_pred, k=1: y_pred), {}, "has no annotation"),
    ]
    for (kind, name, target), options, message in cases:
        with pytest.raises(ValueError, match=message):
            custom_losses.register(kind, name, target, **options)
    assert "x" not in custom_losses.registered_names("loss")
    assert custom_losses.register("loss", "x", fn) is fn          # derived: k: int = 1
    try:
        assert custom_losses.lookup("loss", "x").model.model_fields["k"].default == 1
    finally:
        custom_losses.unregister("loss", "x")


# -- one-file plugins read from their source ----------------------------------------------

ONE_FILE = textwrap.dedent('''\
    """A one-file plugin: Keras and numpy imported at the top."""
    from __future__ import annotations

    import numpy as np
    import keras
    from keras import ops
    from pydantic import BaseModel

    import specc

    TABLE = np.arange(3)            # left out at validation: it needs numpy


    @keras.saving.register_keras_serializable(package="onefile")
    class Double(keras.layers.Layer):
        def __init__(self, factor: float = 2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor


    specc.register_layer("Double", Double, shape=lambda args, shapes: shapes[0])


    @specc.register_layer("Table", shape=lambda args, shapes: (int(np.prod(shapes[0])),))
    class Table(keras.layers.Layer):
        pass


    @specc.register_loss("gap")
    def gap(y_true, y_pred, scale: float = 1.0):
        return scale * ops.mean(ops.square(y_true - y_pred), axis=-1)
''')

ONE_FILE_SPEC = """\
specc: 1
name: m
inputs: {x: {shape: [4]}}
layers:
  - {name: d, type: Double, factor: 3.0}
  - {name: out, type: Dense, units: 1}
outputs: [out]
loss: {type: gap, scale: 0.5}
"""


@pytest.fixture()
def one_file(tmp_path: Path):
    (tmp_path / "onefile.py").write_text(ONE_FILE)
    with config.plugins_imported(config.Options(plugins=(str(tmp_path / "onefile.py"),))):
        yield sys.modules["onefile"]


def test_reading_a_one_file_plugin_imports_neither_keras_nor_numpy(tmp_path: Path) -> None:
    """In a fresh interpreter: other tests of this process may have imported NumPy."""
    (tmp_path / "onefile.py").write_text(ONE_FILE)
    code = ("import sys\nfrom specc import config\n"
            f"with config.plugins_imported(config.Options(plugins=({str(tmp_path / 'onefile.py')!r},))):\n"
            "    assert 'onefile' in sys.modules\n"
            "print(sorted(m for m in ('keras', 'numpy', 'tensorflow') if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (run.returncode, run.stdout) == (0, "[]\n"), run.stderr


def test_a_one_file_plugin_is_read_without_its_imports(one_file) -> None:
    assert plugin_source.is_light("onefile")
    assert one_file.Double == "onefile:Double" and one_file.Table == "onefile:Table"
    with pytest.raises(RuntimeError, match=r"'TABLE' \(from a statement left out\)"):
        one_file.TABLE.sum()
    spec = specc.loads(ONE_FILE_SPEC)
    assert spec.layers[0].factor == 3.0 and spec.loss.arguments() == {"scale": 0.5}
    # the class's arguments come from its __init__ in the source: typos get a did-you-mean
    assert _errors(ONE_FILE_SPEC.replace("factor:", "facter:")) == [
        "t.yaml:5:29: error: unknown key 'facter' in a Double layer (did you mean 'factor'?)"
        "  [unknown-key]"]


def test_a_left_out_name_used_at_validation_is_a_located_error(one_file) -> None:
    text = ONE_FILE_SPEC.replace("{name: d, type: Double, factor: 3.0}", "{name: d, type: Table}")
    (error,) = _errors(text)
    assert error.startswith("t.yaml:5:5: error: ")
    assert ("the shape rule of plugin onefile failed (RuntimeError: 'np' (from numpy) is not "
            "available while specc validates") in error


def test_a_plugin_without_other_imports_is_imported_as_usual(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text(textwrap.dedent('''\
        import specc
        specc.register_loss("plain_gap", "plain_keras:gap")
        '''))
    with config.plugins_imported(config.Options(plugins=(str(tmp_path / "plain.py"),))):
        assert not plugin_source.is_light("plain")
        assert sys.modules["plain"].__file__ == str(tmp_path / "plain.py")
        assert custom_losses.lookup("loss", "plain_gap").target == "plain_keras:gap"


def test_a_class_whose_arguments_cannot_be_read_needs_args(tmp_path: Path) -> None:
    (tmp_path / "bad_args.py").write_text(textwrap.dedent('''\
        import keras
        import specc

        @specc.register_layer("Odd")
        class Odd(keras.layers.Layer):
            def __init__(self, units, **kwargs):
                super().__init__(**kwargs)
        '''))
    with pytest.raises(ValueError, match="argument 'units' of Odd.__init__ has no annotation"):
        with config.plugins_imported(config.Options(plugins=(str(tmp_path / "bad_args.py"),))):
            pass
    assert "Odd" not in custom_layers.registered_names()


def test_a_configured_file_that_is_missing_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.specc]\nplugins = ["plug/missing.py"]\n')
    options = config.read(tmp_path / "pyproject.toml")
    assert options.plugins == (str(tmp_path / "plug" / "missing.py"),)
    with pytest.raises(UsageError, match=r"\[tool.specc\] plugins .*missing.py: cannot import"):
        with config.plugins_imported(options):
            pass


def test_validate_reads_the_configured_one_file_plugin_without_keras() -> None:
    code = ("import sys\nfrom specc.cli import main\n"
            f"code = main(['validate', {str(SIAMESE_SPEC)!r}])\n"
            "print(code, 'keras' in sys.modules, 'tensorflow' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.stdout.splitlines()[-1] == "0 False False", run.stderr


def test_installed_losses_and_metrics_are_found_by_entry_point(tmp_path: Path) -> None:
    spec = tmp_path / "e.yaml"
    spec.write_text(ONE_OUTPUT.replace("{type: contrastive, margin: 2.0}",
                                       "{type: squared_gap, scale: 2.0}")
                    .replace("[mae]", "[{type: gap_within, tol: 0.1}]"))
    code = ("import sys, specc\n"
            f"s = specc.load({str(spec)!r})\n"
            "print(s.loss.arguments(), s.metrics[0].arguments(), 'keras' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS / "losses_site"),
                                                        str(ROOT)])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert run.stdout == "{'scale': 2.0} {'tol': 0.1} False\n", run.stderr


def _without_docstrings(source: str) -> str:
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def test_the_readme_shows_the_siamese_plugin_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Plugins: one file next to its Keras code"):]
    shown = section[section.index("```python\n") + 10:section.index("\n```\n")]
    assert _without_docstrings(shown) == _without_docstrings(SIAMESE_PLUGIN.read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"specs/siamese_contrastive/siamese_plugin.py"' in pyproject
    spec = SIAMESE_SPEC.read_text()
    for line in ("  - {name: distance, type: EuclideanDistance, from: [left, right]}",
                 "loss: {type: contrastive, margin: 1.0}"):
        assert line in spec and line in section


@pytest.mark.parametrize("loss", ["{type: [a, b]}", "{type: {x: 1}}", "{type: 3}"])
def test_a_loss_type_that_is_not_a_word_is_a_located_error(loss: str) -> None:
    """Found by the fuzz test: a list as `loss.type` raised TypeError (unhashable) in the check
    for catalog names before the plugin lookup."""
    text = ("specc: 1\nname: m\ninputs: {x: {shape: [4]}}\nlayers:\n"
            "  - {name: d, type: Dense, units: 1}\noutputs: [d]\nloss: " + loss + "\n")
    with pytest.raises(SpecError) as err:
        specc.loads(text, "t.yaml")
    assert [(d.span.line, d.code) for d in err.value.diagnostics] == [(7, "bad-value")]
