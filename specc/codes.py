"""Every diagnostic code specc reports, declared once (as mypy's errorcodes.py does).

A diagnostic prints its code at the end of its line (`file:line:col: error: ...  [code]`), so a
code is a stable name a user can search for, grep CI logs by, or filter in an editor. Each
code here has its default severity and what it means; the README's table of codes is made
from this registry and a test keeps the two equal, and another test checks that every code
the sources and the golden cases use is declared here. Plugins' penalty kinds may report codes
of their own; those are not listed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


@dataclass(frozen=True)
class Code:
    name: str
    severity: Literal["error", "warning"]
    stage: str
    description: str


def _codes(stage: str, severity: Literal["error", "warning"],
           *entries: tuple[str, str]) -> tuple[Code, ...]:
    return tuple(Code(name, severity, stage, text) for name, text in entries)


#: In pipeline order: reading the file, the format, expansion, references, rules, building.
CODES: Final[tuple[Code, ...]] = (
    *_codes("reading", "error",
            ("io", "the file cannot be read (missing, a folder, no permission)"),
            ("encoding", "the file is not UTF-8 text (or holds a NUL byte)"),
            ("file-too-large", "the file is over the loader's size limit"),
            ("empty", "the file holds no YAML document, or a block makes no layer"),
            ("multi-document", "the file holds more than one YAML document (`---`)"),
            ("yaml-syntax", "YAML syntax error, with a hint for the usual mistakes"),
            ("yaml-tag", "a YAML tag (`!python/...`, `!!binary`): specs are plain data"),
            ("yaml-alias", "an alias (`*name`) to an unknown anchor or to a block that holds it"),
            ("merge-key", "a YAML merge key (`<<:`), which specs do not use"),
            ("duplicate-key", "the same key twice in one mapping"),
            ("key-type", "a mapping key that is not a string"),
            ("yaml-number", "a number out of range (quote it if it is text)"),
            ("yaml-too-deep", "nesting deeper than the loader's limit"),
            ("yaml-too-large", "more values than the loader's limit")),
    *_codes("format", "error",
            ("version", "`specc:` is missing or names a format version specc does not know"),
            ("top-level", "the document is not a mapping of the spec's sections"),
            ("missing-key", "a required key is missing"),
            ("unknown-key", "a key the format does not have (with a did-you-mean)"),
            ("bad-type", "a value of the wrong type"),
            ("bad-value", "a value out of range or not one of the allowed ones"),
            ("bad-name", "a name that is not a valid identifier (or, in format 1, a path)"),
            ("unknown-type", "a layer type that is neither in the catalog nor registered"),
            ("unknown-kind", "a penalty kind that is neither in the catalog nor registered"),
            ("format", "a format 2 construct in a format 1 spec"),
            ("config", "the project configuration ([tool.specc] in pyproject.toml) is wrong"),
            ("bad-override", "a `--set PATH=VALUE` that cannot be applied"),
            ("unknown-override", "a `--set` path that names nothing in the spec"),
            ("include", "a file named by `imports:` or `extends:` cannot be used: missing, "
                        "not a regular file, or outside the project folder")),
    *_codes("expansion", "error",
            ("expression", "a `${...}` expression that does not parse or evaluate"),
            ("too-large", "expansion would make more than its bound (instances, expression "
                          "steps, the size or depth of a value), or a spec reads too many "
                          "files or bytes through `imports:` / `extends:`"),
            ("too-deep", "blocks used inside blocks, or files read through `imports:` / "
                         "`extends:`, deeper than the bound"),
            ("too-many-errors", "more problems than are reported; the rest are counted")),
    *_codes("references", "error",
            ("duplicate-name", "two layers, inputs or clauses with one name"),
            ("unknown-ref", "a name that no input, layer or port has"),
            ("missing-from", "a layer that does not say what it reads where that is needed"),
            ("arity", "a layer given more or fewer inputs than its type takes"),
            ("call-arg", "a `call:` argument the layer type does not take, or of the wrong "
                         "kind"),
            ("cycle", "layers that read each other in a circle, or files that import or extend "
                      "each other"),
            ("unreachable", "a layer no output depends on"),
            ("unused-input", "an input no layer reads"),
            ("bad-output", "an output that names an input, not a layer"),
            ("unknown-output", "a loss, metric or weight keyed by a name that is not an "
                               "output"),
            ("missing-loss", "an output without a loss"),
            ("loss-weights", "loss weights that do not match the outputs"),
            ("name-collision", "a name specc needs for a layer it adds, or a log key, is "
                               "taken"),
            ("no-activation", "`at: pre_activation` on a layer with no activation to split "
                              "off"),
            ("no-match", "a weight clause's layer globs match no layer with such weights"),
            ("pair-same", "a pair penalty that names one tensor twice"),
            ("pair-via", "a pair penalty `via: activity_regularizer`, which sees one tensor"),
            ("weights", "a `weights:` file that is missing, not HDF5 or does not fit")),
    *_codes("rules", "error",
            ("shape", "shapes that do not fit (a kernel larger than its input, a merge of "
                      "unequal shapes)"),
            ("dtype", "a dtype the layer or clause cannot take"),
            ("rank", "a tensor of the wrong rank for the layer"),
            ("axis", "an axis out of range, the batch axis, or repeated"),
            ("time-axis", "a sequence penalty (`ar`, `tar`) on a tensor without a time axis"),
            ("pair-shape", "a pair penalty's two tensors differ in shape, or have no class "
                           "axis for distillation"),
            ("rescaling", "a Rescaling list whose length fits neither one nor every channel"),
            ("loss", "a loss that cannot read its output's targets"),
            ("metric", "a metric that does not read what its output's loss reads"),
            ("budget", "more parameters or a larger tensor than the size budget allows"),
            ("build", "Keras refused to build or compile what validation allowed (located "
                      "at the layer or the loss)")),
    *_codes("warnings", "warning",
            ("sum-reduction", "`reduction: sum` makes a penalty grow with the batch size"),
            ("zero-rate", "a clause whose rate is 0 everywhere"),
            ("kl-range", "a KL sparsity target on a tensor whose values can leave (0, 1)"),
            ("flattened", "a batch statistic over a rank >= 3 tensor without `axis`"),
            ("pre-activation", "`at: pre_activation` that equals `at: output` here"),
            ("after-dropout", "a penalty on a Dropout's output (it sees dropped units)"),
            ("frozen", "a weight clause on frozen weights (it adds a constant)"),
            ("from-logits", "a loss's `from_logits` that does not match the output's "
                            "activation"),
            ("return-state", "format 1 `return_state: true`: the states are computed, "
                             "then dropped"),
            ("plugin-unchecked", "a plugin layer type without a shape or parameter rule"),
            ("unadapted", "`specc build` writes a layer that learns from data (a Normalization "
                          "without statistics, a StringLookup or TextVectorization without a "
                          "vocabulary) before it is adapted; `specc fit` adapts it")),
)

BY_NAME: Final[dict[str, Code]] = {code.name: code for code in CODES}


def table() -> str:
    """The README's table of codes (Markdown), made from the registry."""
    rows = ["| code | severity | stage | meaning |", "|---|---|---|---|"]
    rows += [f"| `{c.name}` | {c.severity} | {c.stage} | {c.description} |" for c in CODES]
    return "\n".join(rows) + "\n"
