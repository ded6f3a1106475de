"""Fuzz every user file envctl reads through its CLI command: profiles (solve), inventories and
hostlists (inventory show), Ansible INI/YAML (inventory import), lockfiles (export; render
fetches wheels, so only the corpus drives it) and
compat matrix files (matrix validate). Each run: a result or exit 2 with one line, never a
traceback, nothing written outside target/out (decoys and the input itself stay untouched)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from . import strategies as s
from .harness import FIXTURES, call, check, examples, judge_cli, sandbox

sys.path.insert(0, str(FIXTURES / "hostile"))
import make_corpus  # the corpus's lock writer: a valid envctl lock to start from

ROOT = Path(__file__).resolve().parents[3]


def _texts(*paths: Path) -> list[str]:
    return [p.read_text() for p in paths]


# ---------------------------------------------------------------- profiles
PROFILES = _texts(*(ROOT / "profiles").glob("*.toml"))
PROFILE_DOC: dict[str, Any] = {
    "environment": {"name": "demo", "python": "~=3.11.0"},
    "frameworks": {"jax": "*"},
    "packages": {"pip": ["numpy>=1.26"]},
    "targets": {"arch": ["x86_64"], "gpus": ["H100"], "driver": "550.54.15", "glibc": "2.36"},
}
profiles = st.one_of(s.mutated(PROFILES), s.replaced(PROFILE_DOC).map(s.toml_text))


@examples(40)
@given(profiles)
def test_profile(text: str) -> None:
    with sandbox() as box:
        path = box.write("profile.toml", text)
        box.seal()
        check("profile", judge_cli(box, ["solve", str(path)]))


# ---------------------------------------------------------------- inventories and hostlists
INVENTORY = """\
[defaults]
ssh_config = ""
user = "ops"
port = 2200
runtime = "prefix"

[groups.gpu]
nodes = ["gpu[01-04]", "gpu-special"]

[nodes.gpu-special]
host = "192.0.2.99"
port = 2222
connect_timeout = 5.0
unpack_max_bytes = 200_000_000_000

[nodes.login1]
host = "192.0.2.10"
jump = "bastion"
"""
INVENTORY_DOC: dict[str, Any] = {
    "defaults": {"ssh_config": "", "user": "ops", "port": 22},
    "groups": {"gpu": {"nodes": ["gpu[1-4]", "a[0-9]-b[1,3]"]}},
    "nodes": {"gpu1": {"host": "10.0.0.1", "connect_timeout": 5}, "login": {"jump": "gpu1"}},
}
# small ranges, or ones far over the cap: 100,000 names are allowed, and take seconds to show
numbers = st.one_of(st.integers(-5, 300), st.sampled_from([10**6, 10**13, "007", "x"]))
hostlists = st.lists(
    st.one_of(
        s.hostile_text,
        st.builds(
            "{}[{}]{}".format,
            st.sampled_from(["g", "", "a-", "[", "x]"]),
            st.lists(
                st.one_of(
                    st.builds("{}-{}".format, numbers, numbers),
                    numbers.map(str),
                    s.tokens,
                ),
                min_size=1,
                max_size=5,
            ).map(",".join),
            st.sampled_from(["", "[0-9]", "-x", "]", "[00-99][00-99][0-99]"]),
        ),
    ),
    min_size=1,
    max_size=4,
)
inventories = st.one_of(
    s.mutated([INVENTORY]),
    s.replaced(INVENTORY_DOC).map(s.toml_text),
    hostlists.map(
        lambda nodes: s.toml_text({"defaults": {"ssh_config": ""}, "groups": {"g": {"nodes": nodes}}})
    ),
)


@examples(40)
@given(inventories)
def test_inventory(text: str) -> None:
    with sandbox() as box:
        path = box.write("inventory.toml", text)
        box.seal()
        check("inventory", judge_cli(box, ["inventory", "show", "-i", str(path)]))


@examples(60)
@given(hostlists)
def test_hostlist(expressions: list[str]) -> None:
    from envctl.core import hostlist

    with sandbox() as box:
        box.seal()
        check("hostlist", call(box, lambda: hostlist.expand_all(expressions)))


# ---------------------------------------------------------------- Ansible INI / YAML
ANSIBLE_INI = (FIXTURES / "push" / "ansible.ini").read_text()
ANSIBLE_YML = (FIXTURES / "push" / "ansible.yml").read_text()
ansible_files = st.one_of(
    st.tuples(st.just("ini"), s.mutated([ANSIBLE_INI])),
    st.tuples(st.just("yml"), s.mutated([ANSIBLE_YML])),
    st.tuples(
        st.just("yml"), st.builds(lambda lines: "\n".join(lines), st.lists(s.hostile_text, max_size=6))
    ),
)


@examples(40)
@given(ansible_files, st.booleans())
def test_ansible(file: tuple[str, str], to_file: bool) -> None:
    suffix, text = file
    with sandbox() as box:
        path = box.write(f"hosts.{suffix}", text)
        box.seal()
        args = ["inventory", "import", str(path)] + (["-o", str(box.out / "inv.toml")] if to_file else [])
        check("ansible", judge_cli(box, args))


# ---------------------------------------------------------------- lockfiles (conda-lock YAML)
LOCKS = [
    make_corpus.lock(),
    make_corpus.lock(name="numpy", pkg_version="2.1.0", solution={"python": "3.12"}),
]
lock_fields = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from(["1", "2", "true", "1.0", "~", "[1]", '"1"', "9" * 30]),
        "name": s.hostile_text.map(lambda t: s.json.dumps(t)),
        "pkg_version": s.hostile_text.map(lambda t: s.json.dumps(t)),
        "url": st.one_of(
            s.hostile_text.map(lambda t: s.json.dumps(t)),
            st.sampled_from(
                ["file:///etc/passwd", "https://a/b/../c.whl", "https://a/%0a.whl", "ftp://x/y.whl"]
            ),
        ),
        "sha": s.hostile_text.map(lambda t: s.json.dumps(t)),
        "custom": st.sampled_from(["[1, 2]", '"x"', "{}", "~", "{envctl_format: '9'}", "*a"]),
        "solution": st.dictionaries(
            st.sampled_from(["profile", "python", "extra"]),
            st.one_of(s.hostile_text, st.integers()),
            max_size=2,
        ),
    },
)
locks = st.one_of(s.mutated(LOCKS), lock_fields.map(lambda kw: make_corpus.lock(**kw)))


@examples(40)
@given(locks, st.sampled_from(["requirements", "pylock", "explicit"]))
def test_lockfile_export(text: str, fmt: str) -> None:
    with sandbox() as box:
        path = box.write("conda-lock.yml", text)
        box.seal()
        check("lockfile", judge_cli(box, ["export", str(path), "--format", fmt]))


# ---------------------------------------------------------------- compat matrix files
SMALL = FIXTURES / "matrix_small"
MATRIX_FILES = sorted(p.name for p in SMALL.glob("*.toml"))


@st.composite
def matrix_edit(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(MATRIX_FILES))
    text = (SMALL / name).read_text()
    if draw(st.booleans()):
        return name, draw(s.mutated([text]))
    from envctl.adapters.files import tomllib

    return name, s.toml_text(draw(s.replaced(tomllib.loads(text))))


@examples(30)
@given(matrix_edit())
def test_matrix(edit: tuple[str, str]) -> None:
    name, text = edit
    with sandbox() as box:
        matrix = box.inputs / "matrix"
        shutil.copytree(SMALL, matrix)
        box.write(f"matrix/{name}", text)
        box.seal()
        check("matrix", judge_cli(box, ["matrix", "validate", "--matrix", str(matrix)]))
