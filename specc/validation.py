"""Located data -> validated Spec: Pydantic models, then the semantic checks, then lowering.

Pydantic errors become located messages in specc.model_errors; many files are checked at
once in specc.parallel.
"""
from __future__ import annotations

import os
from typing import Any, ClassVar, Iterable, Sequence

from pydantic import ValidationError

from specc import custom_layers as _custom
from specc.checks import run_checks, run_cross_checks
from specc.errors import Diagnostic, SpecError, quote
from specc.expand import expand, format1_problems
from specc.loader import Document, load_file, load_text
from specc.model_errors import model_diagnostics
from specc.parallel import PARALLEL_FROM, check_files
from specc.provenance import ExpandedDocument, dedupe, diagnostic, limit_errors
from specc.spec.base import LayerSpec
from specc.spec.model import FORMAT_VERSIONS, InputSpec, Spec

__all__ = ["PARALLEL_FROM", "expand_document", "load", "loads", "partial_spec",
           "validate_document", "validate_paths"]


def _check_version(doc: Document) -> int:
    data = doc.data
    if "specc" not in data:
        raise SpecError.at(doc.span(()), "missing `specc: 1` (the spec format version) at the top",
                           "version")
    version = data["specc"]
    if type(version) is not int or version not in FORMAT_VERSIONS:
        raise SpecError.at(doc.span(("specc",)),
                           f"unsupported spec format version {quote(version)}; this specc reads "
                           f"versions {' and '.join(map(str, FORMAT_VERSIONS))}", "version")
    return version


def expand_document(doc: Document) -> Document | ExpandedDocument:
    """Format 2: blocks, repeats and shares expanded into the flat spec; format 1: as it is,
    once no format 2 construct is found in it. A format 2 spec's imports and base are put in
    first (specc.compose)."""
    if _check_version(doc) == 1:
        problems = format1_problems(doc)
        if problems:
            raise SpecError(problems)
        return doc
    from specc.compose import compose

    flat = expand(compose(doc))
    if not flat.data.get("layers") and flat.problems:
        raise SpecError(flat.problems)
    return flat


def validate_document(doc: Document, overrides: Sequence[Any] = (), limits: Any = None,
                      open_files: Any = None) -> Spec:
    """Overrides, expansion, models, then semantic checks; every problem collected into one
    SpecError (at most MAX_ERRORS of them, specc.provenance.limit_errors). `overrides`
    (specc.overrides.Override) apply to the source (its imports and base put in first,
    specc.compose) where they name something there, else
    (format 2) to the flat spec after expansion; `limits` (specc.budget.Limits) is the size
    budget, None for the default one; `open_files` (specc.includes.OpenFiles) texts that stand
    in for the files it reads (an editor's unsaved buffers)."""
    from specc.compose import compose, is_library, with_sites

    if is_library(doc.data):
        raise SpecError.at(doc.span(()), "this file is a block library (`blocks:` and no "
                           "inputs, layers or outputs), not a spec: a spec uses its blocks "
                           "with `imports:`", "top-level")
    try:
        doc = compose(doc, open_files)           # `imports:` and `extends:` (format 2)
    except SpecError as exc:
        raise SpecError(limit_errors(exc.diagnostics)) from None
    sites = getattr(doc, "sites", {})
    try:
        return _validate(doc, overrides, limits)
    except SpecError as exc:
        raise SpecError(limit_errors(with_sites(exc.diagnostics, sites))) from None


def _validate(doc: Document, overrides: Sequence[Any], limits: Any) -> Spec:
    late: list = []
    if overrides:
        from specc.overrides import apply_source

        doc, late = apply_source(doc, overrides)
    flat = expand_document(doc)
    if late:
        from specc.overrides import apply_flat

        flat = apply_flat(flat, late, doc)
    expanded = list(getattr(flat, "problems", ()))
    context = {"format": flat.data["specc"]}
    try:
        spec = Spec.model_validate(flat.data, context=context)
    except ValidationError as exc:
        found = expanded + model_diagnostics(exc, flat)
        partial = None if expanded else partial_spec(flat.data, context)
        if partial is not None:          # references, names, targets: every problem at once
            seen = {(d.span, d.code) for d in found}
            found += [d for d in (diagnostic(flat, path, msg, code, _is_key(path))
                                  for path, msg, code in run_cross_checks(partial))
                      if (d.span, d.code) not in seen]
        raise SpecError(found) from None
    if expanded:            # the checks would only repeat them (a left-out layer is unknown)
        raise SpecError(expanded)
    problems = run_checks(spec, limits)
    if spec.weights is not None:
        from specc.weights import check_file

        why = check_file(spec.weights, flat.file)
        if why is not None:
            problems.append((("weights",), why, "weights"))
    if problems:
        raise SpecError(dedupe(diagnostic(flat, path, msg, code, _is_key(path))
                               for path, msg, code in problems))
    spec._document = flat
    return spec


class _Unparsed(LayerSpec):
    """A layer entry whose type is unknown: only its name and `from:` are used."""

    type: ClassVar[str] = "(unknown type)"
    min_inputs: ClassVar[int] = 0
    max_inputs: ClassVar[int] = 1 << 30


def partial_spec(data: Any, context: dict | None = None) -> Spec | None:
    """What parsed of a spec that has errors, for the checks of names and references: layers
    whose own arguments are wrong keep their name, type and `from:`; clauses that do not
    validate are left out. None when even that much is not there (no inputs, layers, outputs)."""
    from specc.spec.model import validate_layer

    if not isinstance(data, dict):
        return None
    inputs, layers, outputs = data.get("inputs"), data.get("layers"), data.get("outputs")
    if not (isinstance(inputs, dict) and isinstance(layers, list) and isinstance(outputs, list)
            and all(isinstance(o, str) for o in outputs)):
        return None
    parsed = []
    for entry in layers:
        try:
            parsed.append(validate_layer(entry, context))
            continue
        except (ValidationError, ValueError):
            pass
        if not isinstance(entry, dict):
            return None
        name, src = entry.get("name"), entry.get("from")
        if not isinstance(name, str) or not (src is None or isinstance(src, str) or (
                isinstance(src, list) and src and all(isinstance(r, str) for r in src))):
            return None                 # no name to refer to: references cannot be judged
        cls = _custom.model_for(entry.get("type"))
        parsed.append(cls.model_construct(name=name, from_=src, call=None, type=entry["type"])
                      if cls else _Unparsed.model_construct(name=name, from_=src, call=None))

    def valid(items: Any, model: Any) -> list:
        out = []
        for item in items if isinstance(items, list) else []:
            try:
                out.append(model.validate_python(item, context=context))
            except (ValidationError, ValueError):
                pass
        return out

    from pydantic import TypeAdapter
    from specc.spec.clauses import ActivationClause, AnyWeightClause

    return Spec.model_construct(
        specc=data.get("specc"), name=str(data.get("name")),
        inputs={n: InputSpec.model_construct(shape=[1]) for n in inputs if isinstance(n, str)},
        layers=parsed, outputs=list(outputs), loss="mse", loss_weights=None,
        penalties=valid(data.get("penalties"), TypeAdapter(ActivationClause)),
        weight_penalties=valid(data.get("weight_penalties"), TypeAdapter(AnyWeightClause)),
        metrics=[])


def _is_key(path: tuple) -> bool:
    """Problems about a mapping key (a loss key, an input name) point at the key."""
    return bool(path) and path[0] in ("loss", "loss_weights", "metrics", "inputs") and len(path) == 2


def load(path: str | os.PathLike, overrides: Sequence[Any] = (), limits: Any = None) -> Spec:
    """Read and validate a spec file; raises SpecError. `overrides`: specc.overrides.Override
    (`parse_all(["seed=3"])`); `limits`: a specc.budget.Limits."""
    return validate_document(load_file(path), overrides, limits)


def loads(text: str | bytes, file: str = "<string>", overrides: Sequence[Any] = (),
          limits: Any = None) -> Spec:
    return validate_document(load_text(text, file), overrides, limits)


def _check_one(path: str, overrides: Sequence[Any] = (), limits: Any = None) -> list[Diagnostic]:
    """A file's errors; for a valid spec, its warnings (specc.rules); a block library's
    errors (specc.compose.check_library)."""
    try:
        doc = load_file(path)
        from specc.compose import check_library, is_library

        if is_library(doc.data):
            return check_library(doc)
        spec = validate_document(doc, overrides, limits)
    except SpecError as exc:
        return list(exc.diagnostics)
    from specc.rules import spec_warnings

    from specc.compose import sites_of, with_sites

    return with_sites(spec_warnings(spec), sites_of(spec.document))

def validate_paths(paths: Iterable[str], jobs: int = 0, overrides: Sequence[Any] = (),
                   limits: Any = None) -> list[Diagnostic]:
    """Every diagnostic of every file, in file order; the CLI's `validate` (many files in
    forked children: specc.parallel)."""
    def check(path: str) -> list[Diagnostic]:
        return _check_one(path, overrides, limits)

    return check_files(list(paths), check, jobs)
