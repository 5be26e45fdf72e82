"""Hints for the mistakes people bring from Keras and from YAML: the tables, and the
functions validation and the loader call to turn them into one clause of a message.

- `suggest(word, choices)`: the closest allowed word -- an alias (`acc` -> `accuracy`), the
  same word in another case (`L2`), a Keras class name in snake_case
  (`CategoricalCrossentropy`), else the nearest spelling;
- `key_hint(key, path, data)`: an unknown key that is a Keras habit (`kernel_regularizer`,
  `lr`, `input_shape`, `epochs`) -> where that lives in a spec, with a one-line example;
- `syntax_hint(problem)`: what libyaml's terse parser messages usually mean.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, Final, Iterable

#: Words people write for an allowed word that plain spelling distance gets wrong.
ALIASES: Final[dict[str, str]] = {
    "acc": "accuracy", "lr": "learning_rate", "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy", "scce": "sparse_categorical_crossentropy",
    "rmse": "root_mean_squared_error", "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence", "logcosh": "log_cosh",
    "cosine": "cosine_similarity",
}

#: Regularizer arguments of Keras layers -> the weight kind a specc weight clause names.
REGULARIZER_WEIGHTS: Final[dict[str, str]] = {
    "kernel_regularizer": "kernel", "recurrent_regularizer": "kernel",
    "depthwise_regularizer": "kernel", "pointwise_regularizer": "kernel",
    "embeddings_regularizer": "kernel", "gamma_regularizer": "kernel",
    "bias_regularizer": "bias", "beta_regularizer": "bias",
}
_INPUTS: Final = ("declare the model's inputs under `inputs:` (e.g. `inputs: {x: {shape: "
                  "[28, 28, 1]}}`); layers infer their input sizes")
_TRAINING: Final = ("training settings are not part of the spec: give them to `specc fit` "
                    "(--epochs, --batch-size) or to model.fit")
#: Unknown keys that are Keras habits, with what to write instead.
KEY_HINTS: Final[dict[str, str]] = {
    "lr": "did you mean 'learning_rate'? `lr` is its old Keras name",
    "decay": "Keras optimizers dropped `decay`; for weight decay write `weight_decay`",
    "input_shape": _INPUTS, "batch_input_shape": _INPUTS, "batch_shape": _INPUTS,
    "inputs": "a layer names what it reads with `from:` (e.g. `from: [a, b]`)",
    "input": "a layer names what it reads with `from:` (e.g. `from: a`)",
    "epochs": _TRAINING, "batch_size": _TRAINING, "validation_split": _TRAINING,
    "callbacks": _TRAINING,
}

#: libyaml's parser problems -> what they usually mean in a spec.
SYNTAX_HINTS: Final[dict[str, str]] = {
    "did not find expected '-' indicator":
        "this usually means a list item is indented differently from the items before "
        "it: every `- ` of one list starts in the same column",
    "did not find expected key":
        "this usually means a line is indented differently from the keys before it in "
        "the same mapping, or a value holds ': ' and needs quotes",
    "mapping values are not allowed here":
        "this usually means a key is indented under a line that already has a value, or "
        "a value holds ': ' and needs quotes",
    "did not find expected ',' or ']'":
        "this usually means a `[` list is not closed on its line, or an item holds a "
        "character that needs quotes",
    "did not find expected ',' or '}'":
        "this usually means a `{` mapping is not closed on its line, or a value holds a "
        "character that needs quotes",
    "could not find expected ':'":
        "this usually means a key lacks its ':', or a quote or bracket above is not closed",
}


def _snake(word: str) -> str:
    """CategoricalCrossentropy -> categorical_crossentropy, KLDivergence -> kl_divergence."""
    word = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", word)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", word).lower()


def suggest(word: object, choices: Iterable[str]) -> str:
    """` (did you mean 'x'? ...)` for the allowed word closest to `word`, or ''."""
    if not isinstance(word, str) or not word:
        return ""
    word = word[:100]
    choices = list(choices)
    alias = ALIASES.get(word)
    if alias in choices:
        return f" (did you mean {alias!r}?)"
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower:
        return f" (did you mean {lower[word.lower()]!r}? the words are case-sensitive)"
    snake = _snake(word)
    if snake != word.lower() and snake in choices:
        return (f" (did you mean {snake!r}? specc takes Keras's snake_case names, not "
                "class names)")
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _layer_name(path: tuple, data: Any) -> str:
    try:
        name = data[path[0]][path[1]]["name"]
    except (KeyError, IndexError, TypeError):
        return "dense1"
    return name if isinstance(name, str) and len(name) <= 40 else "dense1"


def key_hint(key: object, path: tuple, data: Any) -> str:
    """` (...)` saying where a Keras habit lives in a spec, or ''."""
    if not isinstance(key, str):
        return ""
    if path[:1] == ("layers",) and len(path) >= 3 and (key in REGULARIZER_WEIGHTS
                                                       or key == "activity_regularizer"):
        layer = _layer_name(path, data)
        if key == "activity_regularizer":
            return (f" (a penalty on a layer's output is a clause under `penalties:`, e.g. "
                    f"`penalties: [{{name: {layer}_energy, layer: {layer}, kind: l2, "
                    f"rate: 1.0e-3}}]`)")
        return (f" (weight regularizers are clauses under `weight_penalties:`, e.g. "
                f"`weight_penalties: [{{name: {layer}_decay, layers: {layer}, weights: "
                f"{REGULARIZER_WEIGHTS[key]}, kind: l2, rate: 1.0e-4}}]`)")
    if key == "axis" and path[:1] == ("penalties",) and len(path) == 3:
        from specc.penalties import CATALOG

        takers = [k.name for k in CATALOG.values() if k.takes_axis]
        return (f" (`axis` is a parameter of the batch statistics {', '.join(takers)}; the "
                "other kinds measure every element already)")
    if key in ("delete", "replace", "after", "before") and len(path) == 3 and \
            path[0] in ("layers", "penalties", "weight_penalties"):
        return (f" (`{key}:` changes an entry of a base spec by name: it is read in a spec "
                "that says `extends:`)")
    if key == "layers" and path[:1] == ("penalties",) and len(path) == 3:
        return (" (a penalty between two layers is a clause under `pair_penalties:`, "
                "`{name, layers: [s, t], kind: mse | distillation | cosine, rate}`; a clause "
                "here names one `layer`)")
    hint = KEY_HINTS.get(key)
    return f" ({hint})" if hint else ""


def number_hint(value: object) -> str:
    """` (...)` for a whole number that YAML read as a float (`1e10`, `64.0`), or ''."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return f" (with a point or an exponent it is a float in YAML; write {int(value)})"
    return ""


#: The same problem as worded by libyaml and by PyYAML's pure-Python parser.
_MAPPING_VALUES: Final = ("mapping values are not allowed here",
                          "mapping values are not allowed in this context")
_DASH_WORD: Final = re.compile(r"-[^\s\-]")
_KEY_WITH_VALUE: Final = re.compile(r"(?:- +)*[^\s#'\"{\[][^:#]*:[ \t]+[^\s#]")


def syntax_hint(problem: str, lines: list[str] | None = None, line: int = -1,
                column: int = -1) -> str:
    """`; ...` for a libyaml parser problem, or ''. With the text's `lines` and the
    problem's 0-based `line` and `column`, a ': ' where no mapping value may go is told
    apart: a list item without the space after its dash, a key indented under a line that
    already has a value, or a value that holds ': '."""
    if problem in _MAPPING_VALUES and lines is not None and 0 <= line < len(lines):
        hint = _mapping_value_hint(lines, line, column)
        if hint:
            return f"; {hint}"
    hint = SYNTAX_HINTS.get(problem)
    if hint is None and problem in _MAPPING_VALUES:
        hint = SYNTAX_HINTS[_MAPPING_VALUES[0]]
    return f"; {hint}" if hint else ""


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _dash_hint(body: str, where: str = "") -> str:
    item = body[1:].split(" #")[0].strip()
    item = item if len(item) <= 40 else item[:37] + "..."
    return (f"a list item{where} needs a space after its dash: write `- {item}` (without it, "
            f"`{body[:2]}...` is read as a plain word, not as a list item)")


def _mapping_value_hint(lines: list[str], line: int, column: int) -> str:
    text = lines[line]
    body = text.lstrip(" ")
    if _DASH_WORD.match(body) and not body.startswith("---"):
        return _dash_hint(body)
    first = text.find(": ")
    if 0 <= first < column:   # a second ': ' on the line, inside a value
        value = text[first + 1:].split(" #")[0].strip()
        return f"a value that holds ': ' needs quotes: write {_quoted(value)}"
    above = line - 1
    while above >= 0 and (not lines[above].strip() or lines[above].lstrip().startswith("#")):
        above -= 1
    if above < 0 or _indent(text) <= _indent(lines[above]):
        return ""
    prev = lines[above].lstrip(" ")
    if _DASH_WORD.match(prev) and not prev.startswith("---"):
        return _dash_hint(prev, f" on line {above + 1}")
    if not _KEY_WITH_VALUE.match(prev):
        return ""
    key_column = _indent(lines[above]) + len(prev) - len(prev.lstrip("- ")) + 1
    key = body.split(":")[0].strip()
    return (f"`{key[:40]}` is indented more than line {above + 1} above it, whose key "
            f"already has a value: start it in column {key_column}, with the keys before it")


def _quoted(value: str) -> str:
    return f"'{value}'" if "'" not in value else '"' + value.replace('"', '\\"') + '"'


def literal_hint(errors: Iterable[dict]) -> str:
    """The suggestion for a word refused by a union of closed word lists and other types
    (`loss: categorical_crossentropyy`), from Pydantic's literal_error among `errors`."""
    for err in errors:
        if err.get("type") == "literal_error" and isinstance(err.get("input"), str):
            expected = str((err.get("ctx") or {}).get("expected", ""))
            return suggest(err["input"], re.findall(r"'([^']*)'", expected))
    return ""
