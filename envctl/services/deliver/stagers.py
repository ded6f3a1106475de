"""The stage strategy a push runs with, built from the ``--fanout`` choice (``core.fanout_mode``)."""

from __future__ import annotations

from envctl.core.fanout_mode import FanoutChoice
from envctl.errors import InputError
from envctl.services.deliver.push import DirectStager, Stager


def make_stager(choice: FanoutChoice, via: str | None, relay_plaintext: bool = False) -> Stager:
    """The stager for ``choice`` (``via``: the registry URL, for ``registry``)."""
    if choice.mode == "direct":
        return DirectStager()
    if choice.mode == "relay":
        from envctl.services.deliver.relay_stage import RelayStager

        return RelayStager(plaintext=relay_plaintext)
    raise InputError(f"--fanout {choice.mode} is not available in this build", hint="use --fanout direct")
