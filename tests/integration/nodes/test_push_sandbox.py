"""push / status / rollback on real sshd nodes with real Docker engines."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from envctl.adapters.oci_layout import OciImage
from envctl.adapters.ssh_pool import SSHPool
from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxPlan
from envctl.services.deliver.push import PushOptions, push
from envctl.services.deliver.rollback import rollback
from envctl.services.deliver.status import status

pytestmark = pytest.mark.integration


def on_node(pool: SSHPool, t: NodeSpec, *argv: str) -> str:
    transport = pool.connect(t)
    try:
        return transport.run(list(argv)).stdout.decode().strip()
    finally:
        transport.close()


def test_prefix_runtime_push_runs_everywhere_and_rolls_back(
    prefix_targets: list[NodeSpec], pool: SSHPool, make_image: Callable[..., OciImage]
) -> None:
    v1, v2 = make_image("1"), make_image("2")
    opts = PushOptions(env="demo", idle_timeout=10)
    first = push(v1, prefix_targets, pool, opts)
    assert first.outcome == "all", first.as_json()
    for t in prefix_targets:
        assert (
            on_node(pool, t, "/opt/envctl/envs/demo/bin/sh", "/opt/envctl/envs/demo/app/run.sh") == "envmod 1"
        )
        assert (
            on_node(
                pool,
                t,
                "python3",
                "-c",
                "import sys; sys.path.insert(0, '/opt/envctl/envs/demo/app');"
                " import envmod; print(envmod.VERSION)",
            )
            == "1"
        )
    second = push(v2, prefix_targets, pool, opts)
    assert second.outcome == "all"
    changed = sum(b.size for b in v2.blobs if b not in v1.blobs)
    assert all(r.bytes_sent == changed for r in second.nodes.values())
    assert not status(prefix_targets, pool, "demo").drifted
    back = rollback("demo", prefix_targets, pool)
    assert back.outcome == "all" and back.digest == v1.manifest.digest
    for t in prefix_targets:
        assert on_node(pool, t, "/opt/envctl/envs/demo/app/run.sh") == "envmod 1"


def test_docker_runtime_loads_from_the_node_store_and_runs(
    docker_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
    cluster: SandboxPlan,
) -> None:
    v1, v2 = make_image("1"), make_image("2")
    res = push(v1, docker_targets, pool, PushOptions(env="web"))
    assert res.outcome == "all", res.as_json()["nodes"]
    for t in docker_targets:
        assert t.docker_host
        out = on_node(
            pool,
            t,
            "docker",
            "-H",
            t.docker_host,
            "run",
            "--rm",
            "--network",
            "none",
            "envctl/web:current",
        )
        assert out == "envmod 1"
    res = push(v2, docker_targets, pool, PushOptions(env="web"))
    assert res.outcome == "all"
    t = docker_targets[0]
    assert (
        on_node(
            pool,
            t,
            "docker",
            "-H",
            str(t.docker_host),
            "run",
            "--rm",
            "--network",
            "none",
            "envctl/web:current",
        )
        == "envmod 2"
    )
    # drift: someone retags the image behind envctl's back
    on_node(
        pool,
        t,
        "docker",
        "-H",
        str(t.docker_host),
        "tag",
        f"envctl/web:{v1.manifest.digest[7:19]}",
        "envctl/web:current",
    )
    st = status(docker_targets, pool, "web")
    assert st.drifted and "envctl/web:current is image" in str(st.nodes[t.name].envs["web"].drift)
    assert not any(st.nodes[n.name].envs["web"].drift for n in docker_targets[1:])
    assert rollback("web", docker_targets, pool).outcome == "all"  # rollback re-tags: converged
    assert not status(docker_targets, pool, "web").drifted
