"""The data envctl ships: compat_matrix/, profiles/ and images/.

An installed envctl (wheel, ``uv tool install``, ``pipx``) carries them inside the package as
``envctl/_data/<folder>/`` (setup.py copies them at build time) and reads them through
importlib.resources. A source checkout, editable installs included, reads the repository's
top-level folders, which are the source of the copies.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: the folders envctl ships, by the name they have at the top of the repository
FOLDERS = ("compat_matrix", "profiles", "images")


def data_dir(name: str) -> Path | None:
    """The shipped folder ``name`` (one of FOLDERS), or None when this envctl has none."""
    if name not in FOLDERS:
        raise ValueError(f"envctl ships no {name!r} folder")
    shipped = resources.files("envctl") / "_data" / name
    # A wheel installs onto a file system; a zip import (no Path) falls through to the checkout.
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    package = Path(__file__).resolve().parents[1]
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    return None
