"""Reading an Ansible inventory as Ansible reads it.

With ansible-core installed (the ``ansible`` extra), ``ansible-inventory -i SRC --list`` answers:
INI and YAML files, ``host:port``, directories, ``group_vars/`` and ``host_vars/``, plugins and
dynamic inventory scripts are Ansible's own business. Without it, the built-in reader takes INI
and YAML files, directories of them and YAML ``group_vars/`` / ``host_vars/`` beside them,
within bounds (file count and size); a dynamic inventory then needs ansible-core, and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from envctl.core import ansible
from envctl.errors import InputError

ANSIBLE_TIMEOUT_S = 120.0  # a dynamic inventory may ask a cloud API
MAX_OUTPUT = 64 << 20  # bytes of --list JSON (a 100,000-host inventory is ~30 MB)
MAX_FILE = 1 << 20  # bytes of one file the built-in reader reads
MAX_FILES = 1000  # files of one inventory directory, or of group_vars/ and host_vars/
#: what Ansible skips in an inventory directory (INVENTORY_IGNORE_EXTS and the vars folders)
IGNORED_SUFFIXES = (
    ".orig",
    ".cfg",
    ".retry",
    ".pyc",
    ".pyo",
    ".swp",
    ".bak",
    "~",
    ".rpm",
    ".md",
    ".txt",
    ".rst",
)
VARS_DIRS = ("group_vars", "host_vars")
READERS = ("auto", "ansible", "builtin")


def ansible_inventory_command() -> str | None:
    """``ansible-inventory`` on PATH, or beside this Python (an install into envctl's venv)."""
    found = shutil.which("ansible-inventory")
    if found is not None:
        return found
    beside = Path(sys.executable).parent / "ansible-inventory"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def read_ansible(
    path: Path, reader: str = "auto", fmt: str | None = None
) -> tuple[ansible.AnsibleInventory, str]:
    """The inventory at ``path`` and how it was read (``ansible-inventory`` or ``built-in``)."""
    if not path.exists():
        raise InputError(f"{path}: no such inventory", hint="check the path")
    command = ansible_inventory_command() if reader != "builtin" else None
    if reader == "ansible" and command is None:
        raise InputError(
            "ansible-inventory not found", hint="install ansible-core (the `ansible` extra of envctl)"
        )
    if command is not None and fmt is None:
        return _from_ansible(command, path), "ansible-inventory"
    return _builtin(path, fmt), "built-in"


def _from_ansible(command: str, path: Path) -> ansible.AnsibleInventory:
    # argv, never a shell; the user's ansible.cfg applies (its inventory plugins, say); a source
    # no plugin could parse is an error, not an empty inventory with a warning
    env = {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"}
    argv = [command, "-i", str(path), "--list"]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=ANSIBLE_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"{path}: ansible-inventory gave no answer within {ANSIBLE_TIMEOUT_S:g}s") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot run {command}: {exc.strerror}") from exc
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        said = next((ln for ln in reversed(lines) if "ERROR" in ln), lines[-1] if lines else "")
        raise InputError(
            f"{path}: ansible-inventory failed (exit {done.returncode}): {said[:300]}",
            hint=f"`ansible-inventory -i {path} --list` shows the same",
        )
    if len(done.stdout) > MAX_OUTPUT:
        raise InputError(f"{path}: ansible-inventory printed over {MAX_OUTPUT} bytes")
    try:
        doc = json.loads(done.stdout)
    except ValueError as exc:
        raise InputError(f"{path}: ansible-inventory --list printed no JSON: {exc}") from exc
    return ansible.from_list_json(doc, str(path))


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE:
            raise InputError(f"{path}: over {MAX_FILE} bytes", hint="install ansible-core to read it")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read inventory: {exc}") from exc


def _listing(directory: Path) -> list[Path]:
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise InputError(f"{directory}: cannot list: {exc.strerror}") from exc
    if len(entries) > MAX_FILES:
        raise InputError(f"{directory}: over {MAX_FILES} entries", hint="install ansible-core to read it")
    return [e for e in entries if not e.name.startswith(".") and not e.name.endswith(IGNORED_SUFFIXES)]


def detect_format(path: Path, text: str) -> str:
    """``ini`` or ``yaml``, from the suffix or, failing that, the content."""
    if path.suffix in (".yml", ".yaml"):
        return "yaml"
    if path.suffix in (".ini", ".cfg"):
        return "ini"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "yaml" if first.startswith("---") or first.endswith(":") else "ini"


def _one_file(path: Path, fmt: str | None) -> ansible.AnsibleInventory:
    if os.access(path, os.X_OK):
        raise InputError(
            f"{path}: a dynamic inventory (an executable) needs Ansible to run it",
            hint="install ansible-core (the `ansible` extra of envctl), then re-run",
        )
    text = _read(path)
    if (fmt or detect_format(path, text)) == "yaml":
        return ansible.parse_yaml(_yaml(path, text), str(path))
    return ansible.parse_ini(text, str(path))


def _yaml(path: Path, text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML: {exc}".replace("\n", " ")) from exc


def _builtin(path: Path, fmt: str | None) -> ansible.AnsibleInventory:
    if not path.is_dir():
        inv = _one_file(path, fmt)
        base = path.parent
    else:
        inv = ansible.AnsibleInventory(str(path))
        for entry in _listing(path):
            if entry.is_file() and entry.name not in VARS_DIRS:
                inv.merge(_one_file(entry, fmt))
        base = path
    _vars_dirs(inv, base)
    return inv


def _vars_dirs(inv: ansible.AnsibleInventory, base: Path) -> None:
    """``group_vars/NAME[.yml]`` and ``host_vars/NAME[.yml]`` (files or folders of files) beside
    the inventory; they win over the inventory file's own variables, as in Ansible."""
    for folder, table in (("group_vars", inv.group_vars), ("host_vars", inv.hosts)):
        directory = base / folder
        if not directory.is_dir():
            continue
        for entry in _listing(directory):
            name = entry.name.removesuffix(".yml").removesuffix(".yaml").removesuffix(".json")
            files = _listing(entry) if entry.is_dir() else [entry]
            for file in files:
                if not file.is_file():
                    continue
                data = _yaml(file, _read(file))
                if data is None:
                    continue
                if not isinstance(data, dict):
                    raise InputError(f"{file}: expected a mapping of variables")
                if folder == "group_vars":
                    inv.group(name)
                if folder == "host_vars" and name not in table:
                    continue  # variables of a host the inventory does not list: Ansible ignores them too
                table[name].update(data)
