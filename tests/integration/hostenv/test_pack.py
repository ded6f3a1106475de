"""``envctl pack``: a relocatable archive that runs wherever it is unpacked, the same bytes from
the same lock, recorded in history; hostile inputs end in one-line errors (exit 2)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from he_run import as_nobody, open_dirs
from json_envelope import assert_envelope
from nd_oci import write_layout

from envctl.adapters import ledger
from envctl.adapters.inventory_file import load_inventory
from envctl.adapters.ssh import connect
from envctl.cli import main
from envctl.core.sandbox import SandboxPlan

pytestmark = pytest.mark.integration

RUN = "import sys, thepkg, six; print(sys.executable, thepkg.__version__, six.__version__)"


def envctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code = 0
    try:
        main([*argv, "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert_envelope(doc, code)
    return code, doc, out.err


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack(archive: Path, where: Path, fmt: str) -> Path:
    target = where / "environment"
    where.mkdir(parents=True)
    if fmt == "tar.gz":
        target.mkdir()
        subprocess.run(["tar", "-xzf", str(archive), "-C", str(target)], check=True)
    elif fmt == "zip":
        subprocess.run(["unzip", "-q", str(archive), "-d", str(target)], check=True)
    else:
        subprocess.run(["unsquashfs", "-q", "-n", "-d", str(target), str(archive)], check=True)
    return target


@pytest.mark.parametrize("fmt", ["tar.gz", "zip", "squashfs"])
def test_pack_is_reproducible_relocatable_and_recorded(
    fmt: str,
    he_lock: Callable[[str], Path],
    he_base: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock = he_lock("1.0")
    cache = tmp_path / "cache"
    archives = [tmp_path / f"one/env.{fmt}", tmp_path / f"two/env.{fmt}"]
    docs, took = [], []
    for archive in archives:
        started = time.monotonic()
        code, doc, err = envctl(
            capsys, "pack", str(lock), "-o", str(archive), "--format", fmt, "--base", f"oci:{he_base}",
            "--cache-dir", str(cache),
        )  # fmt: skip
        assert code == 0, (doc, err)
        docs.append(doc)
        took.append(time.monotonic() - started)
    with capsys.disabled():  # numbers only: tests never assert timings
        print(f"\npack {fmt}: {took[0]:.1f}s and {took[1]:.1f}s, {archives[0].stat().st_size / 1e6:.1f} MB")
    assert sha256(archives[0]) == sha256(archives[1]) == docs[0]["sha256"] == docs[1]["sha256"]
    assert docs[0]["format"] == fmt and docs[0]["kind"] == "venv" and docs[0]["python"] == "3.11"
    recorded = [e for e in ledger.events("pack") if e.outcome == "ok"]
    assert [e.subject for e in recorded] == [f"sha256:{docs[0]['sha256']}"] * 2
    # unpacked into two different places, run as nobody from a third directory
    elsewhere = tmp_path / "cwd"
    open_dirs(elsewhere)
    for place in ("a", "b/deeper"):
        env = unpack(archives[0], tmp_path / place, fmt)
        open_dirs(tmp_path / place)
        subprocess.run(["chmod", "-R", "a+rX", str(env)], check=True)
        argv = as_nobody(str(env / "bin/python"), "-c", RUN, home=str(elsewhere), cwd=str(elsewhere))
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [f"{env}/bin/python", "1.0", "1.16.0"]
        hello = subprocess.run(
            as_nobody(str(env / "bin/thepkg-hello"), home=str(elsewhere), cwd=str(elsewhere)),
            capture_output=True,
            text=True,
            check=False,
        )
        assert hello.stdout.split() == [
            "hello",
            "1.0",
            f"{env}/bin/python",
            f"{env}/bin/thepkg-hello",
            str(elsewhere),
        ]


def test_packed_archive_runs_on_a_sandbox_node(
    he_cluster: SandboxPlan,
    he_lock: Callable[[str], Path],
    he_base: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "env.tar.gz"
    code, doc, err = envctl(
        capsys, "pack", str(lock := he_lock("1.0")), "-o", str(archive), "--base", f"oci:{he_base}",
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert code == 0, (doc, err, lock)
    node = he_cluster.nodes[0]
    job = Path(node.path("tmp", "he-pack"))  # the node's /tmp/he-pack
    subprocess.run(["rm", "-rf", str(job)], check=True)
    open_dirs(job)
    (job / "env.tar.gz").write_bytes(archive.read_bytes())
    spec = load_inventory(Path(he_cluster.inventory)).node("n1")
    script = (
        "mkdir environment && tar -xzf env.tar.gz -C environment && cd / && "
        f"./tmp/he-pack/environment/bin/python -c {RUN!r}"
    )
    with connect(spec) as transport:
        result = transport.run(
            as_nobody("sh", "-c", script, home="/tmp/he-pack", cwd="/tmp/he-pack"), check=False
        )
    assert result.exit_code == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["/tmp/he-pack/environment/bin/python", "1.0", "1.16.0"]


def test_pack_refuses_hostile_inputs_with_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_lock = tmp_path / "conda-lock.yml"
    bad_lock.write_text("version: [unclosed\n")
    escaping = tmp_path / "escaping"
    labels = {"dev.envctl.env.prefix": "/opt/envctl/envs/x", "dev.envctl.python": "3.11"}
    write_layout(
        escaping,
        [[("dir", "opt"), ("symlink", "opt/out", "../../../../etc"), ("file", "opt/out/x", b"")]],
        labels=labels,
    )
    plain = tmp_path / "plain"
    write_layout(plain, [[("dir", "app"), ("file", "app/a", b"a")]])
    mine = tmp_path / "mine.tar.gz"
    mine.write_bytes(b"the user's own file")
    cases = [
        (bad_lock, tmp_path / "o1.tar.gz", str(bad_lock)),
        (escaping, tmp_path / "o2.tar.gz", str(escaping)),
        (plain, tmp_path / "o3.tar.gz", "not an envctl environment image"),
        (plain, mine, "refusing to replace it"),
        (tmp_path / "missing.yml", tmp_path / "o4.tar.gz", "missing.yml"),
    ]
    for source, output, says in cases:
        code, doc, _ = envctl(capsys, "pack", str(source), "-o", str(output))
        assert code == 2, doc
        assert says in str(doc["error"]) and "\n" not in str(doc["error"]), doc
        assert not output.exists() or output == mine
    assert mine.read_bytes() == b"the user's own file"
    code, doc, _ = envctl(capsys, "pack", str(plain), "-o", str(tmp_path / "o5"), "--format", "rar")
    assert code == 2
    assert not list(tmp_path.glob("**/pack-*"))  # no scratch left behind
