"""The one TOML writer: whatever it writes, tomllib reads back unchanged."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envctl.adapters.files import tomllib
from envctl.core import toml_out

# Real files are UTF-8: no lone surrogates. Everything else (controls, DEL, quotes, backslashes,
# CJK, emoji, combining marks) is fair game, in keys and in values.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
keys = st.one_of(text, st.sampled_from(["é", "ключ", "鍵", "🎉", "👩‍💻", "a.b", "", " ", '"', "\n"]))
scalars = st.one_of(
    text,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.just(timezone.utc)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        st.lists(st.dictionaries(keys, inner, max_size=3), max_size=3),  # arrays of tables
    ),
    max_leaves=25,
)
documents = st.dictionaries(keys, values, max_size=6)


@given(documents)
def test_round_trip(document: dict[str, Any]) -> None:
    assert tomllib.loads(toml_out.dumps(document)) == document


def test_non_ascii_and_emoji_keys_round_trip() -> None:
    document = {"ключ": {"🎉": "ü", "鍵": [{"é": 1}, {"👩‍💻": [True]}]}, "plain": "x\x7f"}
    text = toml_out.dumps(document)
    assert tomllib.loads(text) == document
    assert '"🎉"' in text  # written as UTF-8, not as escapes TOML would reject


def test_nested_tables_and_none_dropped() -> None:
    text = toml_out.dumps(
        {"nodes": {"gpu[01]": {"port": 22, "key": None}}, "top": "x", "rows": [{"a": 1, "b": None}]}
    )
    assert tomllib.loads(text) == {"top": "x", "nodes": {"gpu[01]": {"port": 22}}, "rows": [{"a": 1}]}
    assert '[nodes."gpu[01]"]' in text


def test_key_with_trailing_newline_is_quoted() -> None:
    # found by hypothesis: a regex `$` also matches before a final newline
    assert tomllib.loads(toml_out.dumps({"0\n": ""})) == {"0\n": ""}


def test_dates_are_toml_dates() -> None:
    when = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert tomllib.loads(toml_out.dumps({"t": {"when": when, "day": date(2025, 1, 2)}})) == {
        "t": {"when": when, "day": date(2025, 1, 2)}
    }


def test_what_toml_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError):
        toml_out.dumps({"a": [1, None]})
    with pytest.raises(TypeError):
        toml_out.dumps({"a": object()})
