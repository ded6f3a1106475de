"""Read the requirement files teams already have into a ``TeamFile`` (for ``envctl init``).

requirements.txt (pip's format: ``-r`` includes, continuation lines, per-line options),
environment.yml (conda's: channels, conda specs, a ``pip:`` list), pyproject.toml (PEP 621
``dependencies`` and chosen ``optional-dependencies``) and pylock.toml (PEP 751, read by
packaging.pylock). What a file says that a profile cannot hold is named in ``notes``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envctl.core.documents import loads_yaml
from envctl.core.init_profile import TeamFile
from envctl.errors import InputError

#: a requirement file is text a person wrote: bigger is a mistake, not an input
MAX_BYTES = 4 * 1024 * 1024
MAX_INCLUDES = 32
_OPTION = re.compile(r"^(-{1,2}[A-Za-z][A-Za-z-]*)(?:=|\s+)?(.*)$")
_KINDS = ("requirements", "environment", "pyproject", "pylock")


def kind_of(path: Path) -> str:
    """Which reader ``path`` needs, from its name; InputError when the name says nothing."""
    name = path.name.lower()
    if name == "pyproject.toml":
        return "pyproject"
    if name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml")):
        return "pylock"
    if name.endswith((".yml", ".yaml")):
        return "environment"
    if name.endswith((".txt", ".in")):
        return "requirements"
    raise InputError(
        f"{path}: cannot tell what kind of file this is",
        hint="name it requirements*.txt, environment.yml, pyproject.toml or pylock.toml, or pass --kind",
    )


def read_team_file(
    path: Path, kind: str | None = None, *, extras: Sequence[str] = (), all_extras: bool = False
) -> TeamFile:
    """The requirements in ``path`` (``kind``: one of requirements, environment, pyproject, pylock)."""
    kind = kind or kind_of(path)
    if kind == "requirements":
        notes: list[str] = []
        pip = _requirements(path, notes, seen=set())
        return TeamFile(str(path), kind, pip=tuple(pip), notes=tuple(notes))
    if kind == "environment":
        return _environment(path)
    if kind == "pyproject":
        return _pyproject(path, extras, all_extras)
    if kind == "pylock":
        return _pylock(path)
    raise InputError(f"--kind: unknown kind {kind!r}", hint=f"one of {', '.join(_KINDS)}")


def _text(path: Path) -> str:
    """The file's text through the one bounded reader (regular files only: never blocks on a
    FIFO), at most MAX_BYTES."""
    from envctl.adapters.files import read_text

    with contextlib.suppress(OSError):  # read_text names a missing or unreadable file
        if (size := path.stat().st_size) > MAX_BYTES:
            raise InputError(f"{path}: {size} bytes; a requirement file is at most {MAX_BYTES}")
    return read_text(path, "file")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) with ``\\`` continuations joined and comments removed, as pip does."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = pending + raw
        pending = ""
        # pip: a comment starts at '#' at the line's start or after whitespace
        if line.lstrip().startswith("#"):
            continue
        cut = line.find(" #")
        line = (line[:cut] if cut >= 0 else line).strip()
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _requirements(path: Path, notes: list[str], seen: set[Path]) -> list[str]:
    """The requirements of a pip requirements file, following ``-r`` includes."""
    resolved = path.resolve()
    if resolved in seen:
        return []
    if len(seen) >= MAX_INCLUDES:
        raise InputError(f"{path}: more than {MAX_INCLUDES} requirement files included")
    seen.add(resolved)
    out: list[str] = []
    for number, line in _logical_lines(_text(path)):
        where = f"{path}:{number}"
        if line.startswith("-"):
            match = _OPTION.match(line)
            option, value = (match.group(1), match.group(2).strip()) if match else (line, "")
            if option in ("-r", "--requirement"):
                out += _requirements(path.parent / value, notes, seen)
            elif option in ("-e", "--editable"):
                notes.append(f"{where}: {line[:120]}: an editable checkout is not a locked wheel; left out")
            elif option in ("-c", "--constraint"):
                notes.append(f"{where}: {line[:120]}: constraints are not requirements; left out")
            elif option in ("-i", "--index-url", "--extra-index-url", "-f", "--find-links"):
                notes.append(f"{where}: {line[:120]}: pass it to `envctl lock` (--index-url / --find-links)")
            else:
                notes.append(f"{where}: {line[:120]}: pip option left out")
            continue
        # per-line options (--hash=..., --config-settings): the lock records hashes itself
        requirement, _, options = line.partition(" --")
        if options and not options.startswith("hash"):
            notes.append(f"{where}: --{options[:80]}: per-requirement pip option left out")
        requirement = requirement.strip()
        out.append(requirement)
    return out


def _environment(path: Path) -> TeamFile:
    data = loads_yaml(_text(path), str(path))  # aliases, depth and size bounded
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a conda environment file (a mapping with 'dependencies')")
    notes = [f"{path}: '{key}' left out" for key in sorted(set(data) - {"name", "channels", "dependencies"})]
    channels = data.get("channels") or []
    dependencies = data.get("dependencies") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise InputError(f"{path}: channels: expected a list of strings")
    if not isinstance(dependencies, list):
        raise InputError(f"{path}: dependencies: expected a list")
    conda: list[str] = []
    pip: list[str] = []
    for index, item in enumerate(dependencies):
        if isinstance(item, str):
            conda.append(item)
        elif isinstance(item, dict) and set(item) == {"pip"} and isinstance(item["pip"], list):
            for line in item["pip"]:
                if not isinstance(line, str):
                    raise InputError(f"{path}: dependencies[{index}].pip: expected strings")
                if line.startswith("-"):
                    notes.append(f"{path}: pip: {line[:120]}: pip option left out")
                else:
                    pip.append(line)
        else:
            raise InputError(f"{path}: dependencies[{index}]: expected a conda spec or {{pip: [...]}}")
    name = data.get("name")
    return TeamFile(
        str(path),
        "environment",
        pip=tuple(pip),
        conda=tuple(conda),
        channels=tuple(channels),
        name=name if isinstance(name, str) else "",
        notes=tuple(notes),
    )


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: expected a list of strings")
    return value


def _pyproject(path: Path, extras: Sequence[str], all_extras: bool) -> TeamFile:
    from envctl.adapters.files import read_toml

    project = read_toml(path, "pyproject.toml").get("project")
    if not isinstance(project, dict):
        raise InputError(f"{path}: no [project] table (PEP 621)", hint="init reads PEP 621 metadata")
    if "dependencies" in (project.get("dynamic") or []):
        raise InputError(
            f"{path}: project.dependencies is dynamic (the build backend fills it in)",
            hint="run init on the requirements file the backend reads",
        )
    pip = _strings(project.get("dependencies", []), f"{path}: project.dependencies")
    groups = project.get("optional-dependencies") or {}
    if not isinstance(groups, dict):
        raise InputError(f"{path}: project.optional-dependencies: expected a table")
    unknown = sorted(set(extras) - set(groups))
    if unknown:
        raise InputError(
            f"{path}: no optional-dependencies group {unknown[0]!r}",
            hint=f"groups here: {', '.join(sorted(groups)) or '(none)'}",
        )
    chosen = sorted(groups) if all_extras else list(dict.fromkeys(extras))
    own = str(project.get("name", ""))
    for group in chosen:
        for line in _strings(groups[group], f"{path}: project.optional-dependencies.{group}"):
            # "proj[other]" inside an extra names the project's own groups: they are read here
            if own and line.split("[")[0].strip().lower() == own.lower():
                continue
            pip.append(line)
    notes = [
        f"{path}: optional group '{g}' not taken (--extra {g} or --all-extras)"
        for g in sorted(groups)
        if g not in chosen
    ]
    python = project.get("requires-python", "")
    return TeamFile(
        str(path),
        "pyproject",
        pip=tuple(pip),
        python=python if isinstance(python, str) else "",
        name=own,
        notes=tuple(notes),
    )


def _pylock(path: Path) -> TeamFile:
    from packaging.pylock import Pylock, PylockValidationError

    from envctl.adapters.files import read_toml

    try:
        lock = Pylock.from_dict(read_toml(path, "pylock.toml"))
    except PylockValidationError as exc:
        raise InputError(f"{path}: not a valid pylock.toml: {exc}") from None
    pip: list[str] = []
    notes = [f"{path}: every package is pinned as locked; `envctl lock` resolves them again, with hashes"]
    for package in lock.packages:
        marker = f"; {package.marker}" if package.marker is not None else ""
        if package.version is not None:
            pip.append(f"{package.name}=={package.version}{marker}")
        elif package.vcs is not None and package.vcs.url:
            pip.append(f"{package.name} @ git+{package.vcs.url}@{package.vcs.commit_id}{marker}")
        elif package.archive is not None and package.archive.url:
            pip.append(f"{package.name} @ {package.archive.url}{marker}")
        else:
            notes.append(f"{path}: {package.name}: neither a version nor a URL; left out")
    python = str(lock.requires_python) if lock.requires_python is not None else ""
    return TeamFile(str(path), "pylock", pip=tuple(pip), python=python, notes=tuple(notes))
