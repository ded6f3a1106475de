"""``envctl init``: a profile from the requirement file a team already has.

Reads it (``adapters.team_files``), drafts the profile (``core.init_profile``: frameworks under
``[frameworks]`` for the solver), checks the draft with the profile reader every other command
uses, and writes it. An existing file is never replaced unless asked (``force``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.core.init_profile import Draft, InitTargets, TeamFile, draft_profile, profile_name
from envctl.errors import InputError


@dataclass(frozen=True)
class InitResult:
    """What ``envctl init`` wrote (schema ``envctl.init/1``)."""

    path: str
    source: str
    kind: str
    name: str
    frameworks: dict[str, str]
    pip: int
    conda: int
    moved: tuple[str, ...]
    notes: tuple[str, ...]
    text: str  # the profile as written

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "schema": "envctl.init/1",
            "path": self.path,
            "source": self.source,
            "kind": self.kind,
            "name": self.name,
            "frameworks": self.frameworks,
            "pip": self.pip,
            "conda": self.conda,
            "moved": list(self.moved),
            "notes": list(self.notes),
        }


def read_source(
    source: Path, kind: str | None = None, *, extras: Sequence[str] = (), all_extras: bool = False
) -> TeamFile:
    """The requirements of ``source`` (see ``adapters.team_files.read_team_file``)."""
    from envctl.adapters.team_files import read_team_file

    return read_team_file(source, kind, extras=extras, all_extras=all_extras)


def init_profile(
    team: TeamFile,
    output: Path,
    *,
    name: str | None = None,
    python: str | None = None,
    targets: InitTargets | None = None,
    force: bool = False,
) -> InitResult:
    """Write the profile for ``team`` to ``output``; InputError when it exists (and not ``force``)
    or when the draft is not a profile ``envctl lock`` reads."""
    from envctl.adapters.files import write_atomic
    from envctl.adapters.profile_file import parse_profile
    from envctl.core import toml_out

    if output.exists() and not force:
        raise InputError(f"{output}: already exists", hint="choose another -o, or --force to replace it")
    chosen = profile_name(name or "", team.name, Path(team.source).resolve().parent.name, output.stem)
    draft: Draft = draft_profile(team, name=chosen, python=python, targets=targets or InitTargets())
    header = (
        f"# Made by `envctl init` from {Path(team.source).name}; edit freely.\n"
        "# Frameworks are under [frameworks]: the solver picks their CUDA builds for [targets].\n"
    )
    text = header + toml_out.dumps(draft.document)
    # the same reader as `envctl solve` and `lock`: init never writes a profile they refuse
    profile = parse_profile(draft.document, output)
    write_atomic(output, text)
    frameworks = {str(k): str(v) for k, v in draft.document.get("frameworks", {}).items()}
    return InitResult(
        path=str(output),
        source=team.source,
        kind=team.kind,
        name=profile.name,
        frameworks=frameworks,
        pip=len(profile.pip),
        conda=len(profile.conda),
        moved=draft.moved,
        notes=draft.notes,
        text=text,
    )
