"""A real Ray cluster (head on n1, a worker on n2): remote tasks run on the interpreter of the
environment ``envctl push`` put on each node (runtime_env ``py_executable``), and report the
versions they see from there. The cluster's own Ray (the driver's, the raylets') is another
installation of the same version, as Ray requires.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs_clusters import RayCluster, pushed_tree, ray_cluster, ray_submit
from jobs_tools import NUMPY, PROBE_VERSION, PUSHED_PYTHON, RAY

from envctl.core.sandbox import SandboxPlan

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_nodes(
    jobs_sandbox: SandboxPlan, jobs_tools_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RayCluster]:
    head, worker = jobs_sandbox.nodes[:2]
    logs = tmp_path_factory.mktemp("ray-logs")
    with ray_cluster(head, [worker], jobs_tools_venv, logs) as cluster:
        print(f"\nRay head + 1 worker up in {cluster.started_s:.1f}s")
        yield cluster


def test_ray_tasks_run_in_the_pushed_environment_on_every_node(
    ray_nodes: RayCluster, jobs_pushed: str
) -> None:
    start = time.monotonic()
    result = ray_submit(ray_nodes, {"py_executable": jobs_pushed})
    print(f"\nRay job: {time.monotonic() - start:.1f}s from driver start to result")
    rows = result["rows"]
    assert isinstance(rows, list)
    assert {row["node"] for row in rows} == {ray_nodes.head.address, *(w.address for w in ray_nodes.workers)}
    env_dir = jobs_pushed.removesuffix("/bin/python")
    trees = {n.address: pushed_tree(n, env_dir) for n in (ray_nodes.head, *ray_nodes.workers)}
    for row in rows:
        tree = trees[str(row["node"])]
        assert row["executable"] == PUSHED_PYTHON or str(row["executable"]).startswith(tree + "/"), row
        for key in ("real_executable", "numpy_real", "probe_real"):
            assert str(row[key]).startswith(tree + "/"), (key, row)
        assert row["ray"] == RAY.split("==")[1] == result["driver_ray"]
        assert row["numpy"] == NUMPY.split("==")[1] and row["probe"] == PROBE_VERSION
