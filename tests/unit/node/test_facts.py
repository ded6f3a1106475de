"""The agent's ``facts`` command: every probe is an answer or a reason, never a crash."""

from __future__ import annotations

import json
import os
import platform
import stat
from pathlib import Path

import pytest

from envctl.core.node_facts import node_facts
from envctl.node import agent, facts

REFUSES_CC = """#!/bin/sh
case "$1" in
  *compute_cap*) echo 'Field "compute_cap" is not a valid field to query.'; exit 2;;
esac
echo "0, Tesla K80, GPU-11111111-2222-3333-4444-555555555555, 11441, [N/A], 470.256.02, 00000000:00:1E.0, Enabled"
"""


def _tool(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_facts_command_prints_one_document_of_raw_probes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, prefix = tmp_path / "store", tmp_path / "envs"
    store.mkdir()
    assert agent.main(["--store", str(store), "--prefix-root", str(prefix), "facts"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for name in ("nvidia_smi", "cpuinfo", "ldd", "os_release", "docker", "cdi", "ibv_devinfo"):
        assert name in doc["probes"]
    probe = doc["probes"]["cpuinfo"]
    assert probe["out"] == Path("/proc/cpuinfo").read_text()
    st = os.statvfs(store)
    assert doc["store"]["total"] == st.f_blocks * st.f_frsize
    assert doc["prefix_root"]["measured"] == str(tmp_path)  # not there yet: its nearest parent
    assert doc["python"]["version"] == platform.python_version()
    assert doc["glibc"] == os.confstr("CS_GNU_LIBC_VERSION")


def test_a_missing_tool_is_a_fact() -> None:
    assert facts.run(["/nonexistent/nvidia-smi"]) == {"missing": "no /nonexistent/nvidia-smi"}
    assert facts.read("/nonexistent/version") == {"missing": "no /nonexistent/version"}


def test_an_nvidia_smi_that_refuses_compute_cap_is_asked_again_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tool(tmp_path, "nvidia-smi", REFUSES_CC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    probe = facts.gpu_probe(facts._env())
    assert probe["rc"] == 0 and "compute_cap" not in probe["fields"]
    assert "not a valid field" in probe["first"]["out"]
    read = node_facts({"probes": {"nvidia_smi": probe}})
    (gpu,) = read.gpus
    assert (gpu.name, gpu.cc, gpu.driver, gpu.bus_id) == ("Tesla K80", None, "470.256.02", "0000:00:1e.0")


def test_a_hung_tool_is_cut_at_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tool(tmp_path, "nvidia-smi", "#!/bin/sh\nsleep 30\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(facts, "TIMEOUT", 0.5)
    assert facts.gpu_probe(facts._env()) == {
        "missing": "nvidia-smi did not answer within 0.5s",
        "fields": facts.GPU_FIELDS,
    }
