"""The agent's smoke check: the script itself (run by a real Python over a real site-packages),
and the ``smoke`` command's refusals on temp-directory nodes (stores under tmp_path)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_local import LocalPool, LocalTransport
from nd_oci import app_layers, write_layout

from envctl.adapters.oci_layout import read_image
from envctl.core.node import NodeSpec
from envctl.errors import AgentError
from envctl.node.smoke import SCRIPT
from envctl.node.smoke import AgentError as NodeAgentError
from envctl.node.smoke import _run as run_bounded
from envctl.services.deliver.nodeclient import NodeClient
from envctl.services.deliver.push import PushOptions, push


def site_packages(root: Path) -> Path:
    found = sorted(root.glob("lib/python3*/site-packages"))
    assert found, root
    return found[0]


def dist(site: Path, name: str, files: dict[str, str]) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "top_level.txt").write_text(name + "\n")
    (info / "RECORD").write_text("".join(f"{p},,\n" for p in files))
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)


def test_the_script_imports_every_package_and_runs_the_kernels_asked(tmp_path: Path) -> None:
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    site = site_packages(env)
    dist(site, "good", {"good/__init__.py": "__version__ = '1.0'\n"})
    dist(site, "brokenpkg", {"brokenpkg/__init__.py": "raise ImportError('broken on purpose')\n"})
    cuda = "def is_available():\n    return False\n"
    dist(site, "torch", {"torch/__init__.py": "from . import cuda\n", "torch/cuda/__init__.py": cuda})
    python = str(env / "bin" / "python")
    out = subprocess.run([python, "-c", SCRIPT, "--kernels"], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout.splitlines()[-1])
    by_name = {p["name"]: p for p in doc["packages"]}
    assert set(by_name) == {"good", "brokenpkg", "torch"}
    assert by_name["good"]["ok"] and by_name["good"]["modules"] == {"good": "1.0"}
    assert not by_name["brokenpkg"]["ok"]
    assert by_name["brokenpkg"]["modules"] == {"brokenpkg": "error: ImportError: broken on purpose"}
    assert doc["kernels"] == {"torch": "error: RuntimeError: torch.cuda.is_available() is False"}
    plain = subprocess.run([python, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert json.loads(plain.stdout.splitlines()[-1])["kernels"] == {}  # a CPU node: none asked


def test_a_check_past_its_timeout_is_killed_with_its_children() -> None:
    start = time.monotonic()
    with pytest.raises(NodeAgentError, match=r"still running after 0\.5s"):
        run_bounded(["/bin/sh", "-c", "sleep 30 & sleep 30"], {"PATH": "/usr/bin:/bin"}, 0.5)
    assert time.monotonic() - start < 10


def agent_on(tmp_path: Path, runtime: str) -> tuple[NodeSpec, NodeClient]:
    spec = NodeSpec(
        "n1", "localhost", runtime=runtime, store=str(tmp_path / "store"), prefix_root=str(tmp_path / "envs")
    )  # type: ignore[arg-type]
    return spec, NodeClient(LocalTransport("n1"), spec)


def test_nothing_pushed_is_nothing_to_verify(tmp_path: Path) -> None:
    _, agent = agent_on(tmp_path, "prefix")
    with pytest.raises(AgentError, match="demo is not active on this node: nothing to verify") as err:
        agent.call("smoke", "demo")
    assert err.value.kind == "absent"


@pytest.mark.parametrize("runtime", ["oci", "prefix"])
def test_refusals_on_a_pushed_env(tmp_path: Path, runtime: str) -> None:
    spec, agent = agent_on(tmp_path, runtime)
    write_layout(tmp_path / "img", app_layers("1", 0))
    image = read_image(tmp_path / "img")
    assert push(image, [spec], LocalPool(), PushOptions(env="demo", lock_timeout=20)).exit_code == 0
    with pytest.raises(AgentError) as err:
        agent.call("smoke", "demo", "--digest", "sha256:" + "0" * 64)
    assert err.value.kind == "drift" and "not sha256:000000000000" in err.value.message
    with pytest.raises(AgentError) as err:
        agent.call("smoke", "demo")
    if runtime == "oci":
        assert err.value.kind == "unsupported" and "keeps the image's blobs only" in err.value.message
    else:  # an image envctl did not build names no environment to import
        assert err.value.kind == "input" and "dev.envctl.env.prefix" in err.value.message
