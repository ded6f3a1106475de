"""The stage strategy a push runs with, built from the ``--fanout`` choice (``core.fanout_mode``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from envctl.core.fanout_mode import FanoutChoice, RelayTuning, choose
from envctl.core.node import NodeSpec
from envctl.core.registry_target import NodePull
from envctl.errors import InputError
from envctl.services.deliver.push import DirectStager, Stager


def make_stager(
    choice: FanoutChoice,
    via: str | None,
    insecure_registry: bool = False,
    relay_plaintext: bool = False,
    relay: RelayTuning | None = None,
    pull: NodePull | None = None,
) -> Stager:
    """The stager for ``choice`` (``via``: the registry URL and ``pull`` how nodes pull, for
    ``registry``; ``relay``: the tree's shape, for ``relay``). A new one each call: a stager
    holds one push's state."""
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

        tuning = relay or RelayTuning()
        return RelayStager(fanout=tuning.fanout, seeds=tuning.seeds, plaintext=relay_plaintext)
    raise InputError(
        f"--fanout {choice.mode} needs a registry", hint="give --via registry://HOST[:PORT]/REPO"
    )


def pick_stager(
    mode: str,
    nodes: Sequence[NodeSpec],
    via: str | None,
    insecure_registry: bool = False,
    relay_plaintext: bool = False,
    relay: RelayTuning | None = None,
    pull: Callable[[], NodePull] | None = None,
) -> tuple[FanoutChoice, Stager]:
    """``--fanout MODE`` for a push to ``nodes``: the mode (``auto`` from their count and the
    registry their inventory names, when ``--via`` is not given) and a fresh stager for it.
    ``pull``: how the nodes pull from the registry (CA, whose login), asked only for ``registry``."""
    from envctl.core.registry_target import inventory_registry

    configured = inventory_registry(nodes) if via is None and mode in ("auto", "registry") else None
    choice = choose(mode, len(nodes), via, configured)
    how = pull() if pull is not None and choice.mode == "registry" else None
    return choice, make_stager(choice, via or configured, insecure_registry, relay_plaintext, relay, how)
