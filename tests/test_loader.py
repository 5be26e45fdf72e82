"""The loader: YAML text -> data + spans, YAML 1.2 scalars, and every refusal located and coded.

No TensorFlow here; the whole file runs in a few seconds.
"""
from __future__ import annotations

import builtins
import functools
import math
import pathlib
import random
import time
import tracemalloc

import pytest
import yaml

from specc import loader
from specc.errors import Span, SpecError
from specc.loader import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_SCALAR,
    Document,
    load_file,
    load_text,
)

F = "spec.yaml"
TOO_DEEP = "nesting is too deep (the limit is 64 levels)"
libyaml_only = pytest.mark.skipif(not yaml.__with_libyaml__, reason="libyaml's message text")


def diags(text: str | bytes, file: str = F) -> list[tuple[int, int, str, str]]:
    """(line, column, code, message) of every diagnostic, in order."""
    with pytest.raises(SpecError) as info:
        load_text(text, file)
    return [(d.line, d.column, d.code, d.message) for d in info.value.diagnostics]


def one(text: str | bytes) -> tuple[int, int, str, str]:
    (found,) = diags(text)
    return found


@pytest.fixture(params=["libyaml", "python"])
def either_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with libyaml's parser and with PyYAML's pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(loader, "_Parser", yaml.SafeLoader)  # (events only: no node tree)
    elif not yaml.__with_libyaml__:
        pytest.skip("PyYAML built without libyaml")
    return request.param


def test_the_limits() -> None:
    assert (MAX_BYTES, MAX_DEPTH, MAX_NODES, MAX_SCALAR) == (1_000_000, 64, 100_000, 10_000)


# ------------------------------------------------------------------------ YAML 1.2 scalars


def test_yaml12_booleans_keep_on_off_yes_no_as_strings(either_parser: str) -> None:
    doc = load_text("name: on\nno: off\nyes: y\nn: N\nt: true\nf: FALSE\nT: True\n", F)
    assert doc.data == {
        "name": "on", "no": "off", "yes": "y", "n": "N", "t": True, "f": False, "T": True
    }  # fmt: skip
    assert type(doc.data["t"]) is bool


def test_core_schema_numbers_and_nulls(either_parser: str) -> None:
    text = (
        "a: 1e-3\nb: 1.0e-3\nc: 0x1F\nd: 0o17\ne: 017\nf: -.inf\ng: .Inf\nh: 1_000\ni: .5\n"
        "j: 1.\nk: -0x1\nl: +12\nm: -7\nn: 0b11\no: 1E3\np: 2.5\nq: 12e\n"
        "z1: ~\nz2: null\nz3: NULL\nz4: Null\nz5:\nz6: nULL\n"
    )
    data = load_text(text, F).data
    assert data == {
        "a": 0.001, "b": 0.001, "c": 31, "d": 15, "e": 17, "f": -math.inf, "g": math.inf,
        "h": "1_000", "i": 0.5, "j": 1.0, "k": "-0x1", "l": 12, "m": -7, "n": "0b11",
        "o": 1000.0, "p": 2.5, "q": "12e",
        "z1": None, "z2": None, "z3": None, "z4": None, "z5": None, "z6": "nULL",
    }  # fmt: skip
    assert [type(data[k]) for k in "abcde"] == [float, float, int, int, int]
    assert math.isnan(load_text("x: .nan\ny: .NaN\n", F).data["x"])


def test_quoted_and_block_scalars_are_always_strings(either_parser: str) -> None:
    text = "a: '1'\nb: \"true\"\nc: 'null'\nd: |\n  12\ne: >-\n  on\nf: ''\ng: \"~\"\n"
    assert load_text(text, F).data == {
        "a": "1", "b": "true", "c": "null", "d": "12\n", "e": "on", "f": "", "g": "~"
    }


def test_absurd_numbers_are_refused() -> None:
    big = "9" * 101
    assert diags(f"ok: {'9' * 100}\na: {big}\nb: 1e999\nc: -1e999\nd: 0x{'f' * 101}\n") == [
        (2, 4, "yaml-number", "number out of range: '" + "9" * 36 + "... (quote it if it is text)"),
        (3, 4, "yaml-number", "number out of range: '1e999' (quote it if it is text)"),
        (4, 4, "yaml-number", "number out of range: '-1e999' (quote it if it is text)"),
        (5, 4, "yaml-number", "number out of range: '0x" + "f" * 34 + "... (quote it if it is text)"),
    ]
    assert load_text(f"a: {'9' * 100}\nb: '{big}'\n", F).data["b"] == big


# ---------------------------------------------------------------------------------- spans

SPEC = """\
# a comment
specc: 1
name: demo
inputs:
  image: {shape: [28, 28, 1]}
layers:
  - name: d1
    type: Dense
    units: 64
  - {name: d2, type: Dense, units: 10}
outputs: [d2]
"""


def at(line: int, column: int) -> Span:
    return Span(F, line, column)


def test_data_and_spans_of_nested_values(either_parser: str) -> None:
    doc = load_text(SPEC, F)
    assert isinstance(doc, Document) and doc.file == F
    assert doc.data == {
        "specc": 1,
        "name": "demo",
        "inputs": {"image": {"shape": [28, 28, 1]}},
        "layers": [
            {"name": "d1", "type": "Dense", "units": 64},
            {"name": "d2", "type": "Dense", "units": 10},
        ],
        "outputs": ["d2"],
    }
    expected = {
        (): at(2, 1),
        ("specc",): at(2, 8),
        ("name",): at(3, 7),
        ("inputs",): at(5, 3),
        ("inputs", "image"): at(5, 10),
        ("inputs", "image", "shape"): at(5, 18),
        ("inputs", "image", "shape", 0): at(5, 19),
        ("inputs", "image", "shape", 2): at(5, 27),
        ("layers",): at(7, 3),
        ("layers", 0): at(7, 5),
        ("layers", 0, "units"): at(9, 12),
        ("layers", 1): at(10, 5),
        ("layers", 1, "units"): at(10, 36),
        ("outputs", 0): at(11, 11),
    }
    for path, span in expected.items():
        assert doc.span(path) == span, path
        assert doc.spans[path] == span, path
    keys = {
        ("specc",): at(2, 1),
        ("inputs",): at(4, 1),
        ("inputs", "image"): at(5, 3),
        ("inputs", "image", "shape"): at(5, 11),
        ("layers", 0, "units"): at(9, 5),
        ("layers", 1, "units"): at(10, 29),
    }
    for path, span in keys.items():
        assert doc.key_span(path) == span, path
        assert doc.key_spans[path] == span, path
    assert len(doc.spans) == 20 and len(doc.key_spans) == 13
    assert ("nope",) not in doc.spans


def test_span_of_a_missing_path_is_its_parent() -> None:
    doc = load_text(SPEC, F)
    assert doc.span(("layers", 0, "activation")) == at(7, 5)  # missing key -> its mapping
    assert doc.key_span(("layers", 0, "activation")) == at(7, 5)
    assert doc.span(("layers", 7)) == at(7, 3)  # index out of range -> the list
    assert doc.span(("nope",)) == at(2, 1)  # -> the root mapping
    assert doc.span(()) == at(2, 1) and doc.key_span(()) == at(2, 1)
    assert doc.span(("outputs", 0, "deeper")) == at(11, 11)  # below a scalar
    assert doc.key_span(("inputs", "image", "dtype")) == at(5, 10)  # the mapping, not its key


def test_span_skips_path_elements_that_are_not_in_the_data() -> None:
    doc = load_text(SPEC, F)  # pydantic locs carry union tags such as the class name
    assert doc.span(("layers", 1, "Dense", "units")) == doc.span(("layers", 1, "units")) == at(10, 36)
    assert doc.key_span(("layers", 1, "Dense", "units")) == at(10, 29)
    assert doc.span(("layers", "function-after[x]", 0, "units")) == at(9, 12)
    assert doc.key_span(("layers", 1, "Dense")) == at(10, 5)  # names a list item: its span
    assert doc.span(("layers", True, "x")) == at(7, 3)  # a bool is not an index
    assert doc.key_span(("layers", 0, "units", "int")) == at(9, 5)  # a tag after a scalar
    assert doc.span(("layers", 0, "units", "int")) == at(9, 12)


def test_alias_shares_the_anchored_value_and_spans_point_into_it(either_parser: str) -> None:
    text = "base: &b {units: 4, act: [relu]}\nlayer: *b\nmore: [*b, 1]\n"
    doc = load_text(text, F)
    assert doc.data["layer"] is doc.data["base"] is doc.data["more"][0]
    assert doc.span(("layer",)) == at(2, 8)  # the alias itself
    assert doc.key_span(("layer",)) == at(2, 1)
    assert doc.span(("layer", "units")) == at(1, 18)  # under it: the anchored block
    assert doc.key_span(("layer", "units")) == at(1, 11)
    assert doc.span(("more", 0, "act", 0)) == at(1, 27)
    assert doc.span(("more", 1)) == at(3, 12)


def test_spans_count_characters_not_bytes() -> None:
    doc = load_text("é: [ü, x]\n".encode(), F)
    assert doc.span(("é", 1)) == at(1, 8)


# ------------------------------------------------------------------------- keys and tags


def test_every_duplicate_key_is_reported(either_parser: str) -> None:
    text = "specc: 1\nlayer:\n  units: 4\n  units: 5\nname: a\nname: b\n"
    assert diags(text) == [
        (4, 3, "duplicate-key", "duplicate key 'units' (first at line 3)"),
        (6, 1, "duplicate-key", "duplicate key 'name' (first at line 5)"),
    ]


def test_a_huge_duplicate_key_is_not_echoed() -> None:
    key = "k" * 1000  # (YAML caps an implicit key at 1,024 characters)
    ((line, column, code, message),) = diags(f"{key}: 1\n{key}: 2\n")
    assert (line, column, code) == (2, 1, "duplicate-key") and len(message) < 100


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("x: !!python/object/apply:os.system ['true']\n", "!!python/object/apply:os.system"),
        ("x: !foo bar\n", "!foo"),
        ("x: !!binary aGVsbG8=\n", "!!binary"),
        ("x: !!str 1\n", "!!str"),
        ("x: ! 1\n", "!"),
        ("x: !!map {a: 1}\n", "!!map"),
        ("x: !<tag:example.com,2024:x> [1]\n", "tag:example.com,2024:x"),
    ],
)
def test_tags_are_refused(text: str, shown: str, either_parser: str) -> None:
    assert one(text) == (1, 4, "yaml-tag", f"tags are not allowed in a spec ({shown!r})")


def test_a_python_tag_runs_no_code(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    text = (
        f"a: !!python/object/apply:os.system ['touch {marker}']\n"
        "b: !!python/object/apply:builtins.exec ['import builtins; builtins.SPECC_PWNED = 1']\n"
        "c: !!python/name:os.system\n"
    )
    assert [d[:3] for d in diags(text)] == [(1, 4, "yaml-tag"), (2, 4, "yaml-tag"), (3, 4, "yaml-tag")]
    assert not marker.exists()
    assert not hasattr(builtins, "SPECC_PWNED")


def test_merge_keys_are_refused(either_parser: str) -> None:
    text = "base: &b {units: 4}\nlayer:\n  <<: *b\n  name: x\nok: {'<<': 1}\n"
    assert one(text) == (3, 3, "merge-key", "merge keys ('<<') are not part of YAML 1.2; write the keys out")


def test_mapping_keys_must_be_strings(either_parser: str) -> None:
    text = "1: a\ntrue: b\n~: c\n? [x]\n: d\n? {k: v}\n: e\n'2': ok\n"
    assert diags(text) == [
        (1, 1, "key-type", "mapping keys must be strings, not a number (write it in quotes: '1')"),
        (2, 1, "key-type", "mapping keys must be strings, not a boolean (write it in quotes: 'true')"),
        (3, 1, "key-type", "mapping keys must be strings, not null (write it in quotes: '~')"),
        (4, 3, "key-type", "mapping keys must be strings, not a list"),
        (6, 3, "key-type", "mapping keys must be strings, not a mapping"),
    ]
    assert load_text("'1': a\n\"true\": b\nyes: c\n", F).data == {"1": "a", "true": "b", "yes": "c"}


def test_bad_aliases_are_located(either_parser: str) -> None:
    assert diags("a: *nope\nb: &r [1, *r]\n") == [
        (1, 4, "yaml-alias", "unknown anchor 'nope' (define it with '&' before using '*nope')"),
        (2, 11, "yaml-alias", "alias '*r' refers to a block that contains it"),
    ]


# ------------------------------------------------------------------------------- limits


def billion_laughs() -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        this, prev = chr(97 + i), chr(96 + i)
        lines.append(f"{this}: &{this} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_fast_and_small(either_parser: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        found = one(billion_laughs())
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # 1 root + 10 per line, each alias adding its anchor's size: line 6 passes 100,000
    assert found == (
        6, 8, "yaml-too-large",
        "the file has too many values (the limit is 100,000, counting each alias expansion)",
    )  # fmt: skip
    assert elapsed < 1.0
    assert peak < 200 * 2**20


def test_too_many_values_without_aliases(monkeypatch: pytest.MonkeyPatch, either_parser: str) -> None:
    monkeypatch.setattr(loader, "MAX_NODES", 1_000)  # the same rule, quicker to reach
    text = "- 1\n" * 1_005  # the list is value 1, item i is value i + 1
    assert one(text) == (
        1_000, 3, "yaml-too-large",
        "the file has too many values (the limit is 1,000, counting each alias expansion)",
    )  # fmt: skip


def test_depth_limit_is_exact(either_parser: str) -> None:
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"  # root + 63 lists
    node, levels = load_text(ok, F).data["a"], 1
    while node:
        node, levels = node[0], levels + 1
    assert levels == MAX_DEPTH - 1
    too_deep = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
    assert one(too_deep) == (1, 4 + MAX_DEPTH - 1, "yaml-too-deep", TOO_DEEP)


@functools.lru_cache(maxsize=1)
def deep_block_map() -> str:
    return "".join(" " * i + "k:\n" for i in range(10_000))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("flow-lines", (MAX_DEPTH + 1, 2, "yaml-too-deep", TOO_DEEP)),  # short lines, small file
        ("flow-unclosed", (1, 4 + MAX_DEPTH - 1, "yaml-too-deep", TOO_DEEP)),
        ("flow-one-line", (1, 1, "yaml-too-large", "line too long (20,003 characters; the limit is 20,000)")),
        ("block-map", (1, 1, "file-too-large", "the file is too large (the limit is 1,000,000 bytes)")),
        ("block-seq", (1, 1, "yaml-too-large", "line too long (20,001 characters; the limit is 20,000)")),
    ],
)
def test_10000_deep_nesting_is_refused_without_recursion(
    kind: str, expected: tuple[int, int, str, str], either_parser: str
) -> None:
    if kind == "flow-unclosed" and either_parser == "python":
        pytest.skip("PyYAML's pure-Python scanner is quadratic on 10,000 pending simple keys")
    make = {
        "flow-lines": lambda: "a:\n " + "[\n " * 10_000,
        "flow-unclosed": lambda: "a: " + "[" * 10_000,
        "flow-one-line": lambda: "a: " + "[" * 10_000 + "]" * 10_000,
        "block-map": deep_block_map,  # 50 MB of indentation
        "block-seq": lambda: "- " * 10_000 + "x\n",
    }
    text = make[kind]()
    started = time.perf_counter()
    assert one(text) == expected
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("indent", [1, 2])
def test_deep_block_nesting_within_the_size_limits_is_refused(indent: int, either_parser: str) -> None:
    block_map = "".join(" " * (indent * i) + "k:\n" for i in range(200))
    assert one(block_map) == (MAX_DEPTH + 1, indent * MAX_DEPTH + 1, "yaml-too-deep",
                              "nesting is too deep (the limit is 64 levels)")
    block_seq = "".join(" " * (indent * i) + "-\n" for i in range(200))
    assert one(block_seq) == (MAX_DEPTH + 1, indent * MAX_DEPTH + 1, "yaml-too-deep", TOO_DEEP)


def test_10000_deep_block_nesting_with_the_size_limits_lifted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_BYTES", 10**9)
    monkeypatch.setattr(loader, "MAX_LINE", 10**9)
    started = time.perf_counter()
    assert one("- " * 10_000 + "x\n")[:3] == (1, 2 * MAX_DEPTH + 1, "yaml-too-deep")
    assert one("a: " + "[" * 10_000 + "]" * 10_000)[:3] == (1, 4 + MAX_DEPTH - 1, "yaml-too-deep")
    assert time.perf_counter() - started < 1.0


def test_an_alias_cannot_nest_past_the_depth_limit(either_parser: str) -> None:
    deep = "[" * 60 + "]" * 60
    assert load_text(f"a: &a {deep}\nb: [[*a]]\n", F).data["b"][0][0] is not None
    assert one(f"a: &a {deep}\nb: [[[[*a]]]]\n") == (
        2, 8, "yaml-too-deep", "nesting is too deep (the limit is 64 levels)"
    )  # fmt: skip


class LimitedParser(yaml.SafeLoader):
    """PyYAML's pure-Python parser with a nesting limit like libyaml's (1,000 flow levels in
    PyYAML 6.0.4's wheels), refused as libyaml does: in the scanner, which reads ahead."""

    limit = 1_000

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        if self.flow_level >= self.limit:
            raise yaml.scanner.ScannerError("while increasing flow level", self.get_mark(),
                                            "exceeded maximum nesting depth", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


def parse_with(parser: type, text: str, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, str, str]]:
    with monkeypatch.context() as patch:
        patch.setattr(loader, "_Parser", parser)
        return diags(text)


DEEP_ON_ONE_LINE = {  # n openings on one line, after other content
    "lists": lambda n: "a: " + "[" * n,
    "mappings": lambda n: "a: " + "{k: " * n,
    "closed": lambda n: "a: [" + "[[]], " * 10 + "[" * n + "]" * (n + 1),
    "quoted": lambda n: "a: " + "['x[{', \"y[\\\"{\", 'it''s [', " * 20 + "[" * n,
    "tags-and-plain": lambda n: "a: [!!str x, it's a b, !!seq [1], !<x[1]> y, " + "[" * n,
    "after-events": lambda n: "layers:\n  - {name: d, deep: " + "[" * n,
}


@pytest.mark.parametrize("kind", DEEP_ON_ONE_LINE)
def test_a_parser_limit_that_reads_ahead_gives_specc_own_diagnostic(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parser whose own limit (here 100) is met while it reads ahead: the diagnostics are
    those of the same parser without a limit -- specc's message and code, at the opening
    that passes MAX_DEPTH."""
    text = DEEP_ON_ONE_LINE[kind](150)
    expected = parse_with(yaml.SafeLoader, text, monkeypatch)       # no limit of its own
    assert expected[-1][2:] == ("yaml-too-deep", TOO_DEEP)
    monkeypatch.setattr(LimitedParser, "limit", 100)
    with pytest.raises(yaml.YAMLError, match="exceeded maximum nesting depth"):
        list(yaml.parse(text, Loader=LimitedParser))                # it does refuse first
    assert parse_with(LimitedParser, text, monkeypatch) == expected


@pytest.mark.parametrize("kind", DEEP_ON_ONE_LINE)
def test_libyaml_gives_specc_own_depth_diagnostic(kind: str) -> None:
    """1,100 openings (past libyaml's own limit, where PyYAML 6.0.4's wheels have one) give
    what 100 give (far below it): specc's check, at the same place."""
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML built without libyaml")
    make = DEEP_ON_ONE_LINE[kind]
    expected = diags(make(100))
    assert expected[-1][2:] == ("yaml-too-deep", TOO_DEEP)
    assert diags(make(1_100)) == expected


def test_a_parser_limit_below_specc_own_keeps_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parser stricter than specc: still specc's message and code, at the parser's mark."""
    monkeypatch.setattr(LimitedParser, "limit", 10)
    text = "a: x\nb: " + "[" * 20 + "]" * 20 + "\n"
    assert parse_with(LimitedParser, text, monkeypatch) == [
        (2, 4 + 10, "yaml-too-deep", TOO_DEEP)]     # the 11th '[' of line 2, column 4 + 10


def test_a_50_mb_file_is_refused_before_reading_it(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as stream:
        stream.write(b"a: 1\n")
        stream.seek(50 * 2**20)
        stream.write(b"\n")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(SpecError) as info:
            load_file(path)
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    d = info.value.first
    assert (d.file, d.line, d.column, d.code) == (str(path), 1, 1, "file-too-large")
    assert d.message == "the file is too large (the limit is 1,000,000 bytes)"
    assert elapsed < 1.0 and peak < 8 * 2**20


def test_too_large_text_is_refused(either_parser: str) -> None:
    assert one("a: 1\n" + "#" * loader.MAX_BYTES) == (
        1, 1, "file-too-large", "the file is too large (the limit is 1,000,000 bytes)"
    )  # fmt: skip


def test_long_lines_and_long_scalars_are_refused(either_parser: str) -> None:
    assert one("a: 1\nb: " + "x" * 30_000 + "\n") == (
        2, 1, "yaml-too-large", "line too long (30,003 characters; the limit is 20,000)"
    )  # fmt: skip
    assert one("a: 1\nb: " + "x" * 10_001 + "\n") == (
        2, 4, "yaml-too-large", "value too long (10,001 characters; the limit is 10,000)"
    )  # fmt: skip
    folded = "a: 1\nb: >\n" + "  0123456789\n" * 1_000  # short lines, one 11,000-character value
    assert one(folded) == (2, 4, "yaml-too-large", "value too long (11,000 characters; the limit is 10,000)")
    assert len(load_text("a: " + "x" * MAX_SCALAR + "\n", F).data["a"]) == MAX_SCALAR


# ---------------------------------------------------------------------- bytes and encodings


def test_utf8_bom_is_accepted() -> None:
    for text in (b"\xef\xbb\xbfspecc: 1\nname: x\n", "\ufeffspecc: 1\nname: x\n"):
        doc = load_text(text, F)
        assert doc.data == {"specc": 1, "name": "x"}
        assert doc.key_span(("specc",)) == at(1, 1) and doc.span(("name",)) == at(2, 7)


def test_non_utf8_bytes_are_located() -> None:
    assert one(b"a: 1\nb: caf\xe9\n") == (2, 7, "encoding", "not UTF-8 text (invalid byte 0xe9)")
    assert one("a: é".encode() + b"\xff\n") == (1, 5, "encoding", "not UTF-8 text (invalid byte 0xff)")
    assert one(b"\xff\xfea\x00:\x00") == (1, 1, "encoding", "not UTF-8 text (UTF-16 byte-order mark)")


def test_nul_bytes_and_binary_garbage_are_refused() -> None:
    assert one(b"a: 1\nb: x\x00y\n") == (2, 5, "encoding", "binary data, not text (found a NUL byte)")
    assert one(bytes(range(256)) * 4) == (1, 1, "encoding", "binary data, not text (found a NUL byte)")
    garbage = random.Random(7).randbytes(4096)
    assert one(garbage)[2] == "encoding"


def test_control_characters_in_text_are_refused(either_parser: str) -> None:
    assert one("a: 1\nb: x\x01y\n") == (2, 5, "encoding", "binary data, not text (found '\\x01')")
    assert one("a: 1\nb: \x00\n") == (2, 4, "encoding", "binary data, not text (found '\\x00')")
    assert one("a: 1\nb: \ud800\n") == (2, 4, "encoding", "binary data, not text (found '\\ud800')")


# ------------------------------------------------------------------------ document shape

EMPTY = (1, 1, "empty", "the file is empty; a spec starts with 'specc: 1'")


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n# comments\n", "---\n", "---\n# c\n...\n", b""])
def test_empty_files(text: str | bytes, either_parser: str) -> None:
    assert one(text) == EMPTY


def test_several_documents_are_refused(either_parser: str) -> None:
    assert one("specc: 1\n---\nname: b\n") == (
        2, 1, "multi-document", "a spec file holds one YAML document; a second one starts here"
    )  # fmt: skip
    assert one("---\nspecc: 1\n...\n---\nb: 2\n")[:3] == (4, 1, "multi-document")
    assert load_text("---\nspecc: 1\n...\n", F).data == {"specc": 1}


@pytest.mark.parametrize(
    ("text", "what", "where"),
    [
        ("- a\n- b\n", "a list", (1, 1)),
        ("# c\nhello\n", "a string", (2, 1)),
        ("42\n", "a number", (1, 1)),
        ("true\n", "a boolean", (1, 1)),
        ("~\n", "null", (1, 1)),
        ("'quoted'\n", "a string", (1, 1)),
    ],
)
def test_the_top_level_must_be_a_mapping(
    text: str, what: str, where: tuple[int, int], either_parser: str
) -> None:
    assert one(text) == (*where, "top-level", f"a spec is a mapping at the top level, not {what}")


# ------------------------------------------------------------------------ syntax errors


@libyaml_only
def test_tabs_used_for_indentation() -> None:
    assert one("specc: 1\nlayer:\n\tunits: 4\n") == (
        3, 1, "yaml-syntax",
        "invalid YAML: found character '\\t' that cannot start any token; indent with spaces, not tabs",
    )  # fmt: skip


@libyaml_only
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: b: c\n", (1, 5, "invalid YAML: mapping values are not allowed in this context; "
                             "a value that holds ': ' needs quotes: write 'b: c'")),
        ("a:\n  b: 1\n    c: 2\n", (3, 6, "invalid YAML: mapping values are not allowed in "
                                       "this context; `c` is indented more than line 2 above "
                                       "it, whose key already has a value: start it in "
                                       "column 3, with the keys before it")),
        ("a:\n  -{b: 1, c: 2}\n", (2, 12, "invalid YAML: mapping values are not allowed in "
                                        "this context; a list item needs a space after its "
                                        "dash: write `- {b: 1, c: 2}` (without it, `-{...` is "
                                        "read as a plain word, not as a list item)")),
        ("a:\n  -b: 1\n   c: 2\n", (3, 5, "invalid YAML: mapping values are not allowed in "
                                      "this context; a list item on line 2 needs a space after "
                                      "its dash: write `- b: 1` (without it, `-b...` is read as "
                                      "a plain word, not as a list item)")),
        ("a: [1, 2\nb: 3\n", (2, 2, "invalid YAML: did not find expected ',' or ']' "
                                    "(while parsing a flow sequence that starts at line 1); "
                                    "this usually means a `[` list is not closed on its line, "
                                    "or an item holds a character that needs quotes")),
        ("a:\n  b: 1\n c: 2\n", (3, 2, "invalid YAML: did not find expected key "
                                       "(while parsing a block mapping that starts at line 1); "
                                       "this usually means a line is indented differently from "
                                       "the keys before it in the same mapping, or a value holds "
                                       "': ' and needs quotes")),
        ("a: 'open\n", (2, 1, "invalid YAML: found unexpected end of stream "
                              "(while scanning a quoted scalar that starts at line 1)")),
    ],
)
def test_syntax_errors_are_located(text: str, expected: tuple[int, int, str]) -> None:
    line, column, message = expected
    assert one(text) == (line, column, "yaml-syntax", message)


@pytest.mark.parametrize("text", ["a: b: c\n", "a:\n  b: 1\n    c: 2\n", "a:\n  -{b: 1, c: 2}\n",
                                  "a:\n  -b: 1\n   c: 2\n"])
def test_mapping_value_hints_do_not_depend_on_the_parser(
        text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """libyaml says 'not allowed in this context', PyYAML 'not allowed here': one hint."""
    hint = one(text)[3].split("; ", 1)[1]
    monkeypatch.setattr(loader, "_Parser", yaml.SafeLoader)
    assert one(text)[3].split("; ", 1)[1] == hint


def test_syntax_errors_with_the_fallback_parser(either_parser: str) -> None:
    assert one("a: b: c\n")[:3] == (1, 5, "yaml-syntax")
    assert one("specc: 1\nlayer:\n\tunits: 4\n")[:3] == (3, 1, "yaml-syntax")


def test_earlier_problems_are_kept_with_a_syntax_error() -> None:
    assert [d[:3] for d in diags("a: 1\na: 2\nb: [\n")] == [(2, 1, "duplicate-key"), (4, 1, "yaml-syntax")]


def test_only_spec_errors_escape_on_mangled_input() -> None:
    pieces = ["a:", " ", "\n", "- ", "[", "]", "{", "}", ",", "&x ", "*x", "!t ", "'", '"', "? ", "#",
              "\t", "---\n", "1", "é", "\\", "|", ">", "%YAML 1.2\n", "<<: "]
    rng = random.Random(1234)
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        try:
            result = load_text(text, F)
        except SpecError as exc:
            assert all(d.file == F and d.line >= 1 and d.column >= 1 for d in exc.diagnostics)
        else:
            assert isinstance(result.data, dict)


# ------------------------------------------------------------------------------- files


def test_load_file_names_the_path_as_given(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.yaml").write_text(SPEC, encoding="utf-8")
    doc = load_file("m.yaml")
    assert doc.file == "m.yaml" and doc.span(("layers", 1, "units")) == Span("m.yaml", 10, 36)
    assert load_file(pathlib.Path("m.yaml")).file == "m.yaml"
    (tmp_path / "bad.yaml").write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_file("bad.yaml")
    assert str(info.value) == "bad.yaml:2:1: duplicate key 'a' (first at line 1)"


def test_missing_files_and_directories(tmp_path: pathlib.Path) -> None:
    cases = [
        (tmp_path / "nope.yaml", "no such file or directory"),
        (tmp_path, "is a directory"),
        (f"{tmp_path}/nul\0.yaml", "embedded null byte"),
    ]
    for path, reason in cases:
        with pytest.raises(SpecError) as info:
            load_file(path)
        d = info.value.first
        assert (d.file, d.line, d.column, d.code, d.message) == (
            str(path), 1, 1, "io", f"cannot read the file: {reason}"
        )  # fmt: skip


# ------------------------------------------------- libyaml = PyYAML's pure-Python parser


def _outcome(text: str | bytes) -> tuple:
    """Everything load_text gives: data (repr: types, order, NaN), spans, key spans, aliases;
    or every diagnostic."""
    try:
        doc = load_text(text, F)
    except SpecError as exc:
        return ("error", [(d.line, d.column, d.code, d.message) for d in exc.diagnostics])
    return ("ok", repr(doc.data), list(doc.spans.items()), list(doc.key_spans.items()),
            dict(doc.aliases))


def _event_walk_only(monkeypatch: pytest.MonkeyPatch, parser: type) -> None:
    monkeypatch.setattr(loader, "_Parser", parser)  # not libyaml's own class: events only


ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = sorted([*(ROOT / "specs").glob("*.yaml"), *(ROOT / "tests/golden/invalid").glob("*.yaml")])


def _variants(text: str) -> list[str]:
    """The text, and cut, doubled, re-indented and tagged versions of it."""
    rng = random.Random(len(text))
    lines = text.splitlines(True)
    out = [text, text.replace("  ", "   ", 3), text + text, text.replace(": ", ":  ", 5)]
    out += [text[: rng.randrange(len(text) + 1)] for _ in range(6)]
    for _ in range(6):
        i, j = rng.randrange(len(lines) + 1), rng.randrange(len(lines) + 1)
        out.append("".join(lines[:i] + lines[j:j + 2] + lines[i:]))
    return out


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("case", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_libyaml_and_the_pure_python_parser_give_the_same(
        case: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file of the examples and of the invalid cases, and variants of it (cut, doubled
    lines, duplicate keys, ...): libyaml's events and PyYAML's pure-Python parser give the same
    data, spans and diagnostics (syntax errors aside: each parser words them its own way)."""
    raw = case.read_bytes()
    try:
        texts: list[str | bytes] = list(_variants(raw.decode("utf-8")))
    except UnicodeDecodeError:  # (the cases of binary files)
        texts = [raw]
    for text in texts:
        events = _outcome(text)
        with monkeypatch.context() as patch:
            _event_walk_only(patch, yaml.SafeLoader)
            python = _outcome(text)
        if events[0] == "ok" or all(d[2] != "yaml-syntax" for d in events[1] + python[1]):
            assert events == python, text
