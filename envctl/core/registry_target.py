"""Where registry delivery goes: ``--via registry://HOST[:PORT]/REPO`` and a group's mirror.

Pure. The one reader of both spellings: the push, the inventory and ``--fanout auto`` all take
what these return, so a value that reaches a URL path has been checked once, here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from envctl.core.names import valid_name
from envctl.core.node import NodeSpec
from envctl.core.shown import shown
from envctl.errors import InputError

SCHEME = "registry://"
REGISTRY_AUTH = ("sender", "node")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+|\[[0-9A-Fa-f:.]{2,45}\]")
_MIRROR = re.compile(r"(https?)://([^/\s:@]+|\[[^\]/\s@]+\])(?::(\d{1,5}))?/?")


@dataclass(frozen=True)
class RegistryTarget:
    """One repository of one registry, reached over HTTPS unless ``insecure``."""

    host: str  # host[:port]
    repository: str
    insecure: bool = False

    @property
    def base(self) -> str:
        """The repository's distribution API root: ``https://HOST/v2/REPO``."""
        return f"{'http' if self.insecure else 'https'}://{self.host}/v2/{self.repository}"

    def __str__(self) -> str:
        return f"{SCHEME}{self.host}/{self.repository}"


@dataclass(frozen=True)
class NodePull:
    """How the nodes pull beyond the registry's URL: whose login (``sender``: the one this push
    mints and hands over; ``node``: each node's own docker login) and a CA bundle (PEM text,
    from ``ca_source`` on this machine) trusted besides each node's system store."""

    auth: Literal["sender", "node"] = "sender"
    ca_pem: str | None = field(default=None, repr=False)
    ca_source: str | None = None


def parse_via(text: str, where: str = "--via", insecure: bool = False) -> RegistryTarget:
    """``registry://HOST[:PORT]/REPO`` as a target; InputError naming ``where`` otherwise."""
    hint = "e.g. registry://harbor.example.com/ml/envs or registry://10.0.0.5:5000/envs"
    if not isinstance(text, str) or not text.startswith(SCHEME):
        raise InputError(f"{where}: expected registry://HOST[:PORT]/REPO, got {shown(text)}", hint=hint)
    host, _, repository = text[len(SCHEME) :].partition("/")
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not name:
        name, port = host, ""
    if not _HOST.fullmatch(name) or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise InputError(f"{where}: {shown(host)} is not a registry host[:port]", hint=hint)
    repository = repository.rstrip("/")
    if not repository or ":" in repository or "@" in repository:
        raise InputError(f"{where}: {shown(text)} names no repository (no tag or digest)", hint=hint)
    valid_name("tag", f"{host}/{repository}", where)  # the image-name grammar, as Docker reads it
    return RegistryTarget(host, repository, insecure)


def parse_mirror(text: str, where: str) -> str:
    """A pull-through mirror's root, ``http(s)://HOST[:PORT]``, without a trailing slash."""
    match = _MIRROR.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match.group(3) and not 0 < int(match.group(3)) < 65536):
        raise InputError(
            f"{where}: expected http(s)://HOST[:PORT] of a registry mirror, got {shown(text)}",
            hint='e.g. registry_mirror = "http://127.0.0.1:5001" (a Spegel, Dragonfly or Harbor proxy endpoint)',
        )
    return text.rstrip("/")


def inventory_registry(nodes: Sequence[NodeSpec]) -> str | None:
    """The one registry the inventory names for ``nodes`` (their ``registry``), or None."""
    named = {n.registry for n in nodes}
    if named == {None}:
        return None
    if len(named) > 1:
        shown_names = ", ".join(sorted(str(r) for r in named))
        raise InputError(
            f"the nodes pushed to name different registries ({shown_names}); one push goes through one",
            hint="set `registry` once in [defaults], push the groups one by one (--limit), or give --via",
        )
    return named.pop()


def inventory_registry_ca(nodes: Sequence[NodeSpec]) -> str | None:
    """The one ``registry_ca`` (a path on this machine) the inventory names for ``nodes``, or None."""
    named = {n.registry_ca for n in nodes}
    if named == {None}:
        return None
    if len(named) > 1:
        raise InputError(
            "the nodes pushed to name different registry_ca files; one push goes through one registry",
            hint="set `registry_ca` once in [defaults], or give --registry-ca",
        )
    return named.pop()
