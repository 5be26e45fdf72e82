"""The language server's latencies and memory (`specc lsp`).

Server side, in this process (the code the server's handlers run, no transport): the
diagnostics of the ResNet50 spec after a change (a valid edit and an edit that makes an
error), a hover on a layer (the first after a change computes the shapes; later ones read
them) and a completion of `from:`. Reference, measured in the same run and taking turns with
the server: specc.loads of the same text and its warnings (what `specc validate` does for one
file), so the ratio is what the server adds to it.

Over stdio, a real client (pygls's) against `python -m specc lsp`: the round trips of the same
requests (didChange -> publishDiagnostics, hover, completion), and the server's resident
memory after start-up and with ten example specs open (each hovered once, so each holds its
shapes); reference: a plain process that imports specc and validates the same ten specs.

    python tests/benchmarks/bench_lsp.py [-r REPEATS]

Targets (issue 23): diagnostics within 50 ms of a change, hover and completion <= 10 ms.
Prints the load average: on a shared machine wall times swing.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SPECS = ROOT / "specs"
RESNET = SPECS / "resnet50.yaml"
TEN = ["resnet50", "mobilenet_v2", "unet", "transformer/transformer_text", "seq2seq",
       "siamese", "mnist_cnn", "lstm_sequence", "two_outputs", "decorrelation"]


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, float]:
    """(median, min) wall time and median CPU time of `repeats` calls, in milliseconds (the
    CPU time resists a shared machine: waiting for a core is not counted)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def _texts() -> tuple[str, str, str]:
    text = RESNET.read_text()
    valid = text.replace("units: 1000", "units: 999")
    broken = text.replace("{name: avg_pool, type: GlobalAveragePooling2D}",
                          "{name: avg_pool, type: GlobalAveragePooling2D, from: conv5x}")
    assert valid != text and broken != text
    return text, valid, broken


def _position(text: str, needle: str, offset: int) -> tuple[int, int]:
    lines = text.split("\n")
    line = next(i for i, l in enumerate(lines) if needle in l)
    return line, lines[line].index(needle) + offset


def server_side(repeats: int) -> None:
    import specc
    from specc.lsp.completion import complete
    from specc.rules import spec_warnings
    from specc.lsp.diagnostics import diagnostics
    from specc.lsp.hover import hover
    from specc.lsp.workspace import Workspace

    text, valid, broken = _texts()
    file, uri = str(RESNET), RESNET.as_uri()
    ws = Workspace(str(ROOT))
    ws.update(uri, file, text)                           # warm: Pydantic's validators built
    specc.loads(text, file)
    flip = [valid, text]

    def change(new: str) -> Callable[[], Any]:
        def run() -> Any:
            flip.reverse()
            return diagnostics(ws.update(uri, file, new if new is not valid else flip[0]), uri)
        return run

    hover_at = _position(text, "name: predictions", 7)
    edit = text.replace("{name: avg_pool, type: GlobalAveragePooling2D}",
                        "{name: avg_pool, type: GlobalAveragePooling2D, from: }")
    complete_at = _position(edit, "from: }", 6)

    after: list[Any] = []

    def changed() -> None:                  # what the server does on a change
        flip.reverse()
        a = ws.update(uri, file, flip[0])
        diagnostics(a, uri)
        after[:] = [a]

    def first_hover() -> Any:
        changed()
        after[0].warm()                     # the server does it after publishing
        return timed(lambda: hover(after[0], hover_at), 1)

    rows = []
    turns: dict[str, list] = {"ref": [], "valid": [], "broken": []}
    for _ in range(repeats):                 # the reference and the server take turns
        turns["ref"].append(timed(lambda: spec_warnings(specc.loads(text, file)), 1))
        turns["valid"].append(timed(change(valid), 1))
        turns["broken"].append(timed(change(broken), 1))
    ref = _median(turns["ref"])
    rows.append(("reference: specc.loads + warnings (validate's work)", ref))
    rows.append(("diagnostics after a valid change", _median(turns["valid"])))
    rows.append(("diagnostics after a change with an error", _median(turns["broken"])))
    def warm() -> Any:
        changed()
        return timed(after[0].warm, 1)

    warms = [warm() for _ in range(repeats)]
    rows.append(("shapes for hover (after publishing)", _median(warms)))
    rows.append(("hover, first after a change", _median([first_hover() for _ in range(repeats)])))
    analysis = ws.update(uri, file, text)
    rows.append(("hover, again", timed(lambda: hover(analysis, hover_at), repeats)))
    partial = ws.update(uri, file, edit)
    rows.append(("completion of from: (text with an error)",
                 timed(lambda: complete(partial, complete_at, ws.valid.get(uri)), repeats)))
    print(f"\nserver side, ResNet50 ({len(text.splitlines())} lines and its block library, "
          f"{len(specc.loads(text, file).layers)} layers), "
          f"{repeats} repeats: wall median (min) ms, CPU median ms, CPU ratio to the reference")
    for label, (med, low, cpu) in rows:
        print(f"  {label:<48} {med:8.2f} ({low:6.2f})  cpu {cpu:7.2f}   x{cpu / ref[2]:.2f}")
    ws.shutdown()


def _median(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    return (statistics.median(r[0] for r in runs), min(r[1] for r in runs),
            statistics.median(r[2] for r in runs))


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def reference_memory() -> int:
    code = (f"import specc, sys\nsys.path.insert(0, {str(SPECS / 'transformer')!r})\n"
            "import transformer_layers\n"
            f"for name in {TEN!r}:\n"
            f"    specc.load({str(SPECS)!r} + '/' + name + '.yaml')\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    return int(out.stdout.split()[-1]) * 1024


async def over_stdio(repeats: int) -> None:
    from lsprotocol import types as lsp
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("bench", "1")
    published: dict[str, asyncio.Future] = {}

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _publish(params: lsp.PublishDiagnosticsParams) -> None:
        waiter = published.pop(f"{params.uri}#{params.version}", None)
        if waiter is not None and not waiter.done():
            waiter.set_result(params)

    await client.start_io(sys.executable, "-m", "specc", "lsp", cwd=str(ROOT),
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    pid = client._server.pid                                     # type: ignore[union-attr]
    await client.initialize_async(lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=ROOT.as_uri()))
    client.initialized(lsp.InitializedParams())
    versions: dict[str, int] = {}

    async def send(path: Path, text: str) -> float:
        uri = path.as_uri()
        versions[uri] = versions.get(uri, 0) + 1
        waiter = asyncio.get_running_loop().create_future()
        published[f"{uri}#{versions[uri]}"] = waiter
        t = time.perf_counter()
        if versions[uri] == 1:
            client.text_document_did_open(lsp.DidOpenTextDocumentParams(
                lsp.TextDocumentItem(uri, "yaml", versions[uri], text)))
        else:
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(version=versions[uri], uri=uri),
                [lsp.TextDocumentContentChangeWholeDocument(text)]))
        await asyncio.wait_for(waiter, 120)
        return (time.perf_counter() - t) * 1000

    async def request(coro_fn: Callable[[], Any]) -> float:
        t = time.perf_counter()
        await coro_fn()
        return (time.perf_counter() - t) * 1000

    await asyncio.sleep(0.5)
    start_rss = _rss(pid)
    text, valid, broken = _texts()
    await send(RESNET, text)
    doc = lsp.TextDocumentIdentifier(RESNET.as_uri())
    rows: dict[str, list[float]] = {"didChange -> diagnostics (valid edit)": [],
                                    "didChange -> diagnostics (edit with an error)": [],
                                    "hover (first after a change)": [], "hover (again)": [],
                                    "completion of from:": []}
    line, col = _position(text, "name: predictions", 7)
    edit = text.replace("{name: avg_pool, type: GlobalAveragePooling2D}",
                        "{name: avg_pool, type: GlobalAveragePooling2D, from: }")
    cline, ccol = _position(edit, "from: }", 6)
    for k in range(repeats):
        rows["didChange -> diagnostics (valid edit)"].append(
            await send(RESNET, valid if k % 2 == 0 else text))
        rows["hover (first after a change)"].append(await request(
            lambda: client.text_document_hover_async(lsp.HoverParams(doc, lsp.Position(line, col)))))
        rows["hover (again)"].append(await request(
            lambda: client.text_document_hover_async(lsp.HoverParams(doc, lsp.Position(line, col)))))
        rows["didChange -> diagnostics (edit with an error)"].append(await send(RESNET, broken))
        await send(RESNET, edit)
        rows["completion of from:"].append(await request(
            lambda: client.text_document_completion_async(lsp.CompletionParams(
                doc, lsp.Position(cline, ccol)))))
    await send(RESNET, text)
    print(f"\nover stdio (client round trips, transport included), {repeats} repeats: "
          "median (min) ms")
    for label, times in rows.items():
        print(f"  {label:<48} {statistics.median(times):8.2f} ({min(times):6.2f})")
    for name in TEN[1:]:
        path = SPECS / f"{name}.yaml"
        ptext = path.read_text()
        diags = await send(path, ptext)
        del diags
        pos = _position(ptext, "- {name: ", 9) if "- {name: " in ptext else (0, 0)
        await client.text_document_hover_async(lsp.HoverParams(
            lsp.TextDocumentIdentifier(path.as_uri()), lsp.Position(*pos)))
    await client.text_document_hover_async(lsp.HoverParams(doc, lsp.Position(line, col)))
    ten_rss = _rss(pid)
    ref = reference_memory()
    mb = 1 << 20
    print(f"\nserver memory (VmRSS): {start_rss / mb:.1f} MB after start-up, "
          f"{ten_rss / mb:.1f} MB with ten specs open ({(ten_rss - start_rss) / mb:.1f} MB "
          f"for them)\nreference: a process that imports specc and validates the same ten "
          f"specs: {ref / mb:.1f} MB (server / reference x{ten_rss / ref:.2f})")
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--repeats", type=int, default=21)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    server_side(args.repeats)
    asyncio.run(over_stdio(args.repeats))
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
