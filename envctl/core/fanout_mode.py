"""Which way a push's blobs reach the nodes (``--fanout``), chosen from what the user configured.

``direct``: every node receives from this machine (its link carries one copy per node).
``relay``: nodes that hold a blob forward it to others, so this machine's link carries about one.
``registry``: the image goes once to an OCI registry (``--via``) and every node fetches from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from envctl.core.relay_plan import MAX_FANOUT, MAX_SEEDS
from envctl.errors import InputError

MODES = ("auto", "direct", "relay", "registry")
#: ``auto`` relays from this many nodes on: below it the sender's link carries few copies and the
#: relay's setup (a serving session and a TLS handshake per relaying node, ~1 s) does not pay
RELAY_FROM = 6


@dataclass(frozen=True)
class RelayTuning:
    """The relay tree's shape (``--relay-fanout``, ``--relay-seeds``): children per relaying node,
    and how many nodes the sender streams to itself (its link then carries that many copies)."""

    fanout: int = 2
    seeds: int = 1


def relay_tuning(mode: str, fanout: int | None, seeds: int | None) -> RelayTuning:
    """The tuning for ``--fanout MODE`` given ``--relay-fanout`` / ``--relay-seeds`` (``None``: not
    given). Ranges are ``core.relay_plan``'s; either flag with a mode that never relays is an
    InputError, so a typo'd mode is not silently ignored."""
    given = [f for f, v in (("--relay-fanout", fanout), ("--relay-seeds", seeds)) if v is not None]
    if given and mode in ("direct", "registry"):
        raise InputError(f"{given[0]} is for --fanout relay, not --fanout {mode}", hint="drop one of them")
    for flag, value, top in (("--relay-fanout", fanout, MAX_FANOUT), ("--relay-seeds", seeds, MAX_SEEDS)):
        if value is not None and not 1 <= value <= top:
            raise InputError(f"{flag} {value}: expected 1 to {top}", hint="see docs/fanout.md (Tuning)")
    default = RelayTuning()
    return RelayTuning(
        default.fanout if fanout is None else fanout, default.seeds if seeds is None else seeds
    )


@dataclass(frozen=True)
class FanoutChoice:
    """The mode a push uses and why (shown in the report)."""

    mode: str
    why: str


def choose(mode: str, nodes: int, via: str | None, configured: str | None = None) -> FanoutChoice:
    """The mode for ``--fanout MODE`` over ``nodes`` nodes, with ``--via`` given or not, and
    ``configured``: the registry the inventory names (``registry`` of every node pushed to)."""
    if via is None and configured is not None and mode in ("auto", "registry"):
        return FanoutChoice(
            "registry", "asked for" if mode == "registry" else "the inventory names a registry"
        )
    if mode not in MODES:
        raise InputError(f"--fanout {mode!r}: unknown mode", hint=f"use one of {', '.join(MODES)}")
    if mode == "registry" and via is None:
        raise InputError(
            "--fanout registry needs a registry",
            hint="give --via registry://HOST[:PORT]/REPO (the team's Harbor, distribution, Zot ...)",
        )
    if via is not None and mode not in ("auto", "registry"):
        raise InputError(f"--via is for --fanout registry, not --fanout {mode}", hint="drop one of them")
    if mode != "auto":
        return FanoutChoice(mode, "asked for")
    if via is not None:
        return FanoutChoice("registry", "a registry was given (--via)")
    if nodes >= RELAY_FROM:
        return FanoutChoice("relay", f"{nodes} nodes (relay from {RELAY_FROM}), no registry given")
    return FanoutChoice("direct", f"{nodes} node(s)")
