"""A real Spark standalone cluster (master on n1, workers on n2 and n3) runs PySpark tasks in the
envctl environment: once used in place where ``envctl push`` put it, once shipped with the job
as the archive ``envctl pack`` made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs_clusters import SparkCluster, pushed_tree, spark_cluster, spark_submit
from jobs_tools import NUMPY, PROBE_VERSION, PUSHED_PYTHON

from envctl.core.sandbox import SandboxPlan

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spark(
    jobs_sandbox: SandboxPlan, jobs_tools_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SparkCluster]:
    import jobs_tools

    master, *workers = jobs_sandbox.nodes
    logs = tmp_path_factory.mktemp("spark-logs")
    with spark_cluster(master, workers, jobs_tools_venv, jobs_tools.java_home(), logs) as cluster:
        print(f"\nSpark master + {len(workers)} workers up in {cluster.started_s:.1f}s")
        yield cluster


def _driver_host(plan: SandboxPlan) -> str:
    return plan.bridge_address.split("/")[0]


def _submit(spark: SparkCluster, plan: SandboxPlan, tools: Path, **options: object) -> dict[str, object]:
    import jobs_tools

    start = time.monotonic()
    result = spark_submit(spark, tools, jobs_tools.java_home(), _driver_host(plan), **options)  # type: ignore[arg-type]
    print(f"\njob {result['app']}: {time.monotonic() - start:.1f}s from submit to result")
    return result


def _by_node(rows: list[dict[str, object]]) -> dict[object, list[dict[str, object]]]:
    nodes: dict[object, list[dict[str, object]]] = {}
    for row in rows:
        nodes.setdefault(row["node"], []).append(row)
    return nodes


def _check_versions(row: dict[str, object]) -> None:
    assert row["probe"] == PROBE_VERSION
    assert row["numpy"] == NUMPY.split("==")[1]


def test_executors_use_the_pushed_environment_in_place(
    spark: SparkCluster, jobs_sandbox: SandboxPlan, jobs_tools_venv: Path, jobs_pushed: str
) -> None:
    result = _submit(spark, jobs_sandbox, jobs_tools_venv, conf={"spark.pyspark.python": jobs_pushed})
    rows = result["rows"]
    assert isinstance(rows, list) and len(rows) == 8
    by_node = _by_node(rows)
    assert set(by_node) == {w.address for w in spark.workers}, "every worker ran tasks"
    env_dir = jobs_pushed.removesuffix("/bin/python")
    for worker in spark.workers:
        tree = pushed_tree(worker, env_dir)  # what push put on this node
        for row in by_node[worker.address]:
            _check_versions(row)
            # the interpreter the job named, running from the pushed tree; numpy and the probe
            # are the environment's, not the cluster's (the tools venv has numpy too)
            assert row["executable"] == PUSHED_PYTHON or str(row["executable"]).startswith(tree + "/"), row
            for key in ("real_executable", "numpy_real", "probe_real"):
                assert str(row[key]).startswith(tree + "/"), (key, row)
            assert row["cwd_environment"] is None
    # nothing shipped with the job: no archive, no files, and the executors' directories hold
    # only their logs
    shipped = result["shipped"]
    assert isinstance(shipped, dict) and not any(shipped.values()), shipped
    for worker in spark.workers:
        app_dir = spark.worker_work_dir(worker) / str(result["app"])
        executors = list(app_dir.iterdir())
        assert executors, f"{worker.name} ran no executor for {result['app']}"
        for executor in executors:
            assert sorted(p.name for p in executor.iterdir()) == ["stderr", "stdout"], executor


def test_executors_unpack_the_packed_archive_shipped_with_the_job(
    spark: SparkCluster, jobs_sandbox: SandboxPlan, jobs_tools_venv: Path, jobs_packed: Path
) -> None:
    result = _submit(
        spark,
        jobs_sandbox,
        jobs_tools_venv,
        conf={"spark.pyspark.python": "./environment/bin/python"},
        archives=[f"{jobs_packed}#environment"],
    )
    rows = result["rows"]
    assert isinstance(rows, list) and len(rows) == 8
    assert set(_by_node(rows)) == {w.address for w in spark.workers}
    assert str(jobs_packed) in str(result["shipped"]["spark.archives"])  # type: ignore[index]
    for row in rows:
        _check_versions(row)
        # the executor's own copy, unpacked in its working directory: nowhere else
        unpacked = str(row["cwd_environment"])
        assert unpacked != "None" and not unpacked.startswith("/opt/envctl/"), row
        for key in ("real_executable", "numpy_real", "probe_real"):
            assert str(row[key]).startswith(unpacked + "/"), (key, row)
    for worker in spark.workers:
        app_dir = spark.worker_work_dir(worker) / str(result["app"])
        assert any((e / "environment").exists() for e in app_dir.iterdir()), worker.name
