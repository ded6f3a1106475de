"""The stage strategy a push runs with, built from the ``--fanout`` choice (``core.fanout_mode``)."""

from __future__ import annotations

from envctl.core.fanout_mode import FanoutChoice
from envctl.core.registry_target import NodePull
from envctl.errors import InputError
from envctl.services.deliver.push import DirectStager, Stager


def make_stager(
    choice: FanoutChoice,
    via: str | None,
    insecure_registry: bool = False,
    relay_plaintext: bool = False,
    pull: NodePull | None = None,
) -> Stager:
    """The stager for ``choice`` (``via``: the registry URL and ``pull`` how nodes pull, for
    ``registry``)."""
    if choice.mode == "direct":
        return DirectStager()
    if choice.mode == "registry" and via is not None:
        from envctl.adapters.registry_push import RegistryPusher
        from envctl.core.registry_target import parse_via
        from envctl.services.deliver.registry_stage import RegistryStager

        pull = pull or NodePull()
        return RegistryStager(
            parse_via(via, insecure=insecure_registry),
            pusher=lambda t: RegistryPusher(t, ca=pull.ca_pem),
            pull=pull,
        )
    if choice.mode == "relay":
        from envctl.services.deliver.relay_stage import RelayStager

        return RelayStager(plaintext=relay_plaintext)
    raise InputError(
        f"--fanout {choice.mode} needs a registry", hint="give --via registry://HOST[:PORT]/REPO"
    )
