"""``--fanout``: which mode a push uses, and the combinations that are refused."""

from __future__ import annotations

import re

import pytest

from envctl.core.fanout_mode import choose
from envctl.errors import InputError


def test_auto_is_direct_without_a_registry() -> None:
    assert choose("auto", 4, None).mode == "direct"


def test_auto_takes_the_registry_it_is_given() -> None:
    choice = choose("auto", 4, "registry://reg:5000/envs")
    assert (choice.mode, choice.why) == ("registry", "a registry was given (--via)")


def test_an_explicit_mode_is_kept() -> None:
    assert choose("relay", 2, None).mode == "relay"
    assert choose("direct", 200, None).why == "asked for"


@pytest.mark.parametrize(
    ("mode", "via", "words"),
    [
        ("registry", None, "needs a registry"),
        ("direct", "registry://reg/envs", "--via is for --fanout registry"),
        ("p2p", None, "unknown mode"),
    ],
)
def test_impossible_combinations_are_input_errors(mode: str, via: str | None, words: str) -> None:
    with pytest.raises(InputError, match=words):
        choose(mode, 3, via)


def test_auto_relays_from_the_threshold_on() -> None:
    from envctl.core.fanout_mode import RELAY_FROM

    assert choose("auto", RELAY_FROM - 1, None).mode == "direct"
    relay = choose("auto", RELAY_FROM, None)
    assert relay.mode == "relay" and f"relay from {RELAY_FROM}" in relay.why
    assert choose("auto", 1000, "registry://reg/envs").mode == "registry"  # a registry given wins


def test_relay_tuning_defaults_and_given_values() -> None:
    from envctl.core.fanout_mode import RelayTuning, relay_tuning

    assert relay_tuning("auto", None, None) == RelayTuning(2, 1)
    assert relay_tuning("relay", 4, None) == RelayTuning(4, 1)
    assert relay_tuning("auto", None, 3) == RelayTuning(2, 3)  # used if auto picks relay


@pytest.mark.parametrize(
    ("mode", "fanout", "seeds", "words"),
    [
        ("relay", 0, None, "--relay-fanout 0: expected 1 to 16"),
        ("relay", 17, None, "--relay-fanout 17"),
        ("relay", None, 0, "--relay-seeds 0: expected 1 to 64"),
        ("relay", None, -3, "--relay-seeds -3"),
        ("direct", 3, None, "--relay-fanout is for --fanout relay, not --fanout direct"),
        ("registry", None, 2, "--relay-seeds is for --fanout relay, not --fanout registry"),
    ],
)
def test_bad_relay_tuning_is_an_input_error(
    mode: str, fanout: int | None, seeds: int | None, words: str
) -> None:
    from envctl.core.fanout_mode import relay_tuning

    with pytest.raises(InputError, match=re.escape(words)):
        relay_tuning(mode, fanout, seeds)
