"""What a valid spec says about the entries of its source: which flat layers and clauses an
entry became (format 2 expansion keeps each one's origin), their shapes and parameter counts
(specc.budget, as the size budget measures them) and what each layer reads (specc.topology).
Computed once per analysis, on first use."""
from __future__ import annotations

from functools import cached_property
from typing import Any, Optional

from specc.lsp.yamlindex import Path


class Facts:
    """The validated spec of one analysis, indexed by source entry."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.doc = spec.document

    @cached_property
    def budget(self) -> Any:
        from specc.budget import measure_spec

        return measure_spec(self.spec)

    @cached_property
    def sizes(self) -> dict[str, Any]:
        return {s.name: s for s in self.budget.sizes}

    @cached_property
    def reads(self) -> dict[str, list[str]]:
        from specc.topology import resolve_reads

        return resolve_reads(self.spec)

    @cached_property
    def layers(self) -> dict[str, Any]:
        return self.spec.layer_map()

    def _origin(self, section: str, j: int) -> tuple[Path, tuple]:
        origins = getattr(self.doc, "origins", None)
        if origins is None:                       # format 1: the source is the flat spec
            return (section, j), ()
        origin = origins.get((section, j))
        return (origin.path, origin.chain) if origin is not None else ((section, j), ())

    def made_by(self, path: Path, section: str = "layers") -> list[int]:
        """Indexes of the flat entries that the source entry at `path` made: written there,
        or made by a use or a repeat written there."""
        items = getattr(self.spec, section)
        out = []
        for j in range(len(items)):
            where, chain = self._origin(section, j)
            if where == path or any(use.site == path for use in chain):
                out.append(j)
        return out

    def clause_layers(self, name: str) -> tuple[list[Any], list[Any]]:
        """The activation clauses on layer `name`, and the weight clauses whose globs match it."""
        import fnmatch

        on = [c for c in self.spec.penalties if c.layer == name or
              c.layer.split(".", 1)[0] == name and c.layer not in self.layers]
        weights = [c for c in self.spec.weight_penalties
                   if any(fnmatch.fnmatchcase(name, p) for p in c.patterns)]
        return on, weights

    def size(self, name: str) -> Optional[Any]:
        return self.sizes.get(name)
