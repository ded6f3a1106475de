"""Bounded parsing (finding 6, 10): depth, size, alias expansion and huge integers end in one
error naming the file, in milliseconds; echoed values are cut by one helper."""

from __future__ import annotations

import time

import pytest

from envctl.core import documents
from envctl.core.documents import check_depth, loads_json, loads_toml, loads_yaml
from envctl.core.shown import one_line, shown
from envctl.errors import InputError, LockError


def _laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines)


def _refused(call: object, *words: str) -> str:
    start = time.monotonic()
    with pytest.raises(InputError) as info:
        call()  # type: ignore[operator]
    assert time.monotonic() - start < 2.0
    message = info.value.message
    assert message.startswith("f: ") and "\n" not in message and len(message) < 600, message
    for word in words:
        assert word in message, message
    return message


def test_a_billion_laughs_is_refused_before_anything_is_built() -> None:
    _refused(lambda: loads_yaml(_laughs(9), "f"), "aliases expand")


def test_aliases_that_share_data_still_read() -> None:
    text = "base: &b {user: root, port: 22}\nn1: {<<: *b, host: a}\nn2: {<<: *b, host: b}\n"
    assert loads_yaml(text, "f")["n2"] == {"user": "root", "port": 22, "host": "b"}
    assert loads_yaml(_laughs(3), "f")["l2"][9][9][9] == "lol"  # 1,000 strings: fine


def test_a_recursive_alias_is_refused() -> None:
    _refused(lambda: loads_yaml("a: &a [*a]\n", "f"), "refers to itself")


@pytest.mark.parametrize(
    ("loads", "text"),
    [
        (loads_yaml, "[" * 5000 + "]" * 5000),
        (loads_yaml, "".join("  " * i + "a:\n" for i in range(300))),
        (loads_json, "[" * 100_000 + "]" * 100_000),
        (loads_json, '{"a":' * 150 + "1" + "}" * 150),
        (loads_toml, "a = " + "[" * 5000 + "]" * 5000),
        (loads_toml, ".".join(["a"] * 300) + " = 1"),
        (loads_toml, "a = " + "{b = " * 2000 + "1" + "}" * 2000),
    ],
)
def test_deep_nesting_is_refused(loads: object, text: str) -> None:
    _refused(lambda: loads(text, "f"))  # type: ignore[operator]


@pytest.mark.parametrize("loads", [loads_yaml, loads_json, loads_toml])
def test_integers_over_pythons_digit_limit(loads: object) -> None:
    text = ("a = " if loads is loads_toml else '{"a": ' if loads is loads_json else "a: ") + "9" * 5000
    text += "}" if loads is loads_json else ""
    _refused(lambda: loads(text, "f"), "4300")  # type: ignore[operator]


def test_the_error_class_is_the_callers() -> None:
    with pytest.raises(LockError):
        loads_yaml("a: [", "f", LockError)


def test_size_is_checked_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "MAX_BYTES", 10)
    _refused(lambda: loads_json("[1, 2, 3, 4, 5]", "f"), "more than")


def test_check_depth_sees_shared_and_flat_values() -> None:
    shared: list[object] = [1]
    assert check_depth({"a": [shared] * 1000}, "f")
    nested: list[object] = []
    for _ in range(200):
        nested = [nested]
    with pytest.raises(InputError, match="nested deeper"):
        check_depth(nested, "f")


def test_shown_cuts_every_echoed_value_and_keeps_it_on_one_line() -> None:
    bomb: list[object] = ["lol"]
    for _ in range(9):
        bomb = [bomb] * 10  # 10**9 strings if expanded
    start = time.monotonic()
    assert len(shown(bomb)) <= 200 and time.monotonic() - start < 0.5
    assert shown("x" * 10_000 + "\n").endswith("\\n'") and len(shown("x" * 10_000)) <= 200
    assert shown(10**5000) == "<an integer of about 5000 digits>"
    assert shown("a\x1b[2J") == "'a\\x1b[2J'" and shown(None) == "None"
    assert one_line("a\n  b\tc " * 1000, 50).endswith("...") and "\n" not in one_line("a\nb")
