"""hypothesis strategies for hostile inputs: structured documents with hostile values, and
textual mutations of valid files (tokens that broke parsers before: nesting, huge integers,
YAML aliases, control characters, rich markup, path climbs, ranges that expand to millions)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

#: fragments that broke an envctl parser before, or that a parser must treat as plain data
TOKENS = [
    "",
    "\n",
    "\r\n",
    "\x00",
    "\x1b[2J",
    "\u202e",
    "\u00b2",
    "[/x]",
    "[bold]",
    ":x:",
    "..",
    "../../../",
    "/",
    "~",
    "*",
    "&a ",
    "*a",
    "[",
    "]",
    "{",
    "}",
    "'",
    '"',
    "\\",
    "nan",
    "inf",
    "-1",
    "0",
    "1e308",
    "9" * 4400,
    "[0-99999]",
    "[0:999999999]",
    "[a:9]",
    "\u00e9",
    ",",
    "=",
    ": ",
    "- ",
    "#",
    "!!python/object/apply:os.system ['true']",
    "%",
    "\t",
    "sha256:" + "ab" * 32,
    "sha256:" + "ab" * 32 + "\n",
    ".wh.",
    "\udcff",
    "[" * 300,
    "{a = " * 200,
    "a." * 300,
]

tokens = st.sampled_from(TOKENS)
hostile_text = st.one_of(
    tokens,
    st.text(max_size=12),
    st.lists(tokens, min_size=1, max_size=4).map("".join),
)


#: markers a structured document carries for what no writer can write (tomli-w and json recurse,
#: and a 5000-digit int has no str()); toml_text puts the real text in their place
RAW = {
    "@@DEEP_LIST@@": "[" * 3000 + "1" + "]" * 3000,
    "@@DEEP_TABLE@@": "{a = " * 1500 + "1" + "}" * 1500,
    "@@HUGE_INT@@": "9" * 5000,
    "@@NAN@@": "nan",
}


#: values of any JSON/TOML type, hostile ones often: deep nesting, huge ints, nan, junk text
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
values = st.recursive(
    st.one_of(scalars, st.sampled_from(sorted(RAW))),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    """One of ``seeds`` with a few edits: a token inserted, a span deleted, a span replaced,
    a span repeated, or the text cut short."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "repeat", "cut"]))
        span = draw(st.integers(min_value=1, max_value=40))
        if op == "insert":
            text = text[:at] + draw(hostile_text) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + span :]
        elif op == "replace":
            text = text[:at] + draw(hostile_text) + text[at + span :]
        elif op == "repeat":
            text = text[:at] + text[at : at + span] * draw(st.sampled_from([2, 50, 2000])) + text[at + span :]
        else:
            text = text[:at]
    return text


def toml_text(document: dict[str, Any]) -> str:
    """``document`` as TOML when tomli-w can write it, else as JSON (itself an invalid TOML)."""
    import tomli_w

    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError):
        text = json.dumps(document, default=str)
    for marker, raw in RAW.items():
        text = text.replace(f'"{marker}"', raw)
    return text


@st.composite
def replaced(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with one to three values (at any depth) replaced by hostile ones, keys added
    or removed."""
    doc = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        node: Any = doc
        path: list[Any] = []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
            path.append(key)
            node = node[key]
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["set", "add", "drop"]))
        if not path:
            doc[draw(hostile_text)] = draw(values)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(node, dict):
            node[draw(hostile_text)] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return doc
