"""The language server for specs (`specc lsp`; the `lsp` extra: pygls).

One module a job: `yamlindex` (where each value of the text starts and ends), `analysis`
(specc's validation pipeline run on the editor's text), `workspace` (open documents, the
project configuration and its plugins), `diagnostics` (specc's diagnostics as the protocol's),
`vocabulary` (what the catalog and the schema say about types, arguments, kinds, losses and
metrics), `cursor` (what the cursor is on, even in half-typed text), `completion`, `hover`,
`symbols` (definitions, references, rename), `fixes` (quick fixes for every did-you-mean) and
`server` (the protocol wiring). No Keras is imported here.
"""
from __future__ import annotations


def serve() -> None:
    """Run the server over standard input and output."""
    from specc.lsp.server import serve as run

    run()
