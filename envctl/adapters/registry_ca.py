"""A private CA for the registry (``--registry-ca FILE``, the inventory's ``registry_ca``).

The file is read once on this machine, checked to be PEM certificates, and used twice: added to
the system's trust store for envctl's own upload (``context``), and handed as text to each node's
agent inside its fetch request (over the SSH channel's stdin), whose ``ssl`` context loads it from
memory. Nothing writes it on a node.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from envctl.errors import InputError

MAX_CA_BYTES = 1 << 20  # the agent's own bound on the bundle it accepts
_HINT = "give the PEM file of the CA that signed the registry's certificate (-----BEGIN CERTIFICATE-----)"


def read_ca(path: Path, where: str = "--registry-ca") -> str:
    """The PEM text of ``path``, checked; InputError naming ``where`` and the file otherwise."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CA_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{where}: {path}: cannot read: {exc.strerror}", hint=_HINT) from None
    if len(data) > MAX_CA_BYTES:
        raise InputError(f"{where}: {path}: larger than {MAX_CA_BYTES} bytes", hint=_HINT)
    try:
        text = data.decode("ascii")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError("no certificate")
        context(text)
    except (ValueError, ssl.SSLError):
        raise InputError(f"{where}: {path}: not PEM certificates", hint=_HINT) from None
    return text


def context(pem: str | None) -> ssl.SSLContext:
    """The system's trust store, plus ``pem`` when given."""
    ctx = ssl.create_default_context()
    if pem is not None:
        ctx.load_verify_locations(cadata=pem)
    return ctx
