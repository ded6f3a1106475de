"""The agent as one runnable zip (``python3 agent.pyz ...``), byte-for-byte reproducible.

The bundle holds every module of this package (all standard library only, as the layer test
checks) but this one, so a node needs python3 and nothing else, and a module the agent gains
travels without a list to update. Its sha256 names it on the node: a changed agent lands beside
the old one.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

_MAIN = b"import sys\nfrom envctl.node.agent import main\nsys.exit(main())\n"


@dataclass(frozen=True)
class AgentBundle:
    """The zipped agent and its content address."""

    data: bytes
    sha256: str

    @property
    def filename(self) -> str:
        """File name of the bundle in ``<store>/agent/``."""
        return f"{self.sha256}.pyz"


@functools.lru_cache(maxsize=1)
def agent_bundle() -> AgentBundle:
    """Build the agent zip with fixed timestamps so equal sources give equal bytes."""
    here = Path(__file__)
    files = {
        "__main__.py": _MAIN,
        "envctl/__init__.py": b"",
        "envctl/node/__init__.py": b"",
    }
    for module in sorted(here.parent.glob("*.py")):
        if module.name not in ("__init__.py", here.name):  # the packages' __init__ stay empty
            files[f"envctl/node/{module.name}"] = module.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
    data = buf.getvalue()
    return AgentBundle(data, hashlib.sha256(data).hexdigest())
