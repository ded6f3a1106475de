"""Benchmark: a Spark job's start with the environment pushed in place vs shipped with the job.

Run as root:  .venv/bin/python bench/jobs.py [--size-gb 2] [--rate 1gbit] [--jobs 2]

In one invocation, on a sandbox (Spark master on n1, workers on n2 and n3, links shaped to
--rate), for one multi-GB environment (numpy, ray and a ballast package of --size-gb random,
incompressible bytes, made here):
  1. ``envctl push`` to the workers, once (what a cluster pays when the environment changes);
  2. in place: --jobs jobs with spark.pyspark.python = the pushed env's bin/python;
  3. ``envctl pack`` (once) and --jobs jobs with ``--archives env.tar.gz#environment``, which
     every job ships to every executor again.
Printed per node and per job: bytes into the node (its host-side veth's tx counter: everything the
driver and the master sent it, TCP overhead included) and seconds from spark-submit to the
tasks' results; then the ratios archive / in place. Tests do not assert timings; this does not
either.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for sub in ("", "jobs", "build"):
    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / sub))

import jobs_env  # noqa: E402
import jobs_tools  # noqa: E402
from jobs_clusters import SparkCluster, spark_cluster, spark_submit  # noqa: E402

from envctl.core.sandbox import SandboxNode, SandboxPlan, plan_sandbox  # noqa: E402
from envctl.services.cluster import sandbox  # noqa: E402

PREFIX, SUBNET, DIRECTORY = "jbb", "10.252.7.16/28", "/var/tmp/ect-jbb"
CHUNK = 4 * 2**20


def ballast_wheel(directory: Path, size_bytes: int, file_bytes: int = 256 * 2**20) -> Path:
    """``envctl-ballast``: a wheel of random (incompressible) files, stored, written in chunks."""
    name, version = "envctl_ballast", "1.0"
    dist_info = f"{name}-{version}.dist-info"
    path = directory / f"{name}-{version}-py3-none-any.whl"
    directory.mkdir(parents=True, exist_ok=True)
    record: list[str] = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as wheel:

        def add(member: str, chunks: object) -> None:
            digest, size = hashlib.sha256(), 0
            info = zipfile.ZipInfo(member, (2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with wheel.open(info, "w", force_zip64=True) as out:
                for chunk in chunks:  # type: ignore[attr-defined]
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            sha = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            record.append(f"{member},sha256={sha},{size}")

        left, index = size_bytes, 0
        while left > 0:
            part = min(left, file_bytes)
            add(
                f"{name}/blob{index:03d}.bin",
                (os.urandom(min(CHUNK, part - o)) for o in range(0, part, CHUNK)),
            )
            left, index = left - part, index + 1
        add(f"{name}/__init__.py", [b""])
        add(
            f"{dist_info}/METADATA",
            [f"Metadata-Version: 2.1\nName: envctl-ballast\nVersion: {version}\n".encode()],
        )
        add(
            f"{dist_info}/WHEEL",
            [b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"],
        )
        wheel.writestr(f"{dist_info}/RECORD", "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n")
    return path


def tx_bytes(node: SandboxNode) -> int:
    """Bytes this machine has sent into ``node`` (the host side of its link)."""
    return int(Path("/sys/class/net", node.veth, "statistics", "tx_bytes").read_text())


def measured(nodes: tuple[SandboxNode, ...], action):  # type: ignore[no-untyped-def]
    """Run ``action``; return (its result, seconds, bytes into each node)."""
    before = {n.name: tx_bytes(n) for n in nodes}
    start = time.monotonic()
    result = action()
    seconds = time.monotonic() - start
    return result, seconds, {n.name: tx_bytes(n) - before[n.name] for n in nodes}


def run_job(cluster: SparkCluster, tools: Path, plan: SandboxPlan, **options: object) -> dict[str, object]:
    result = spark_submit(
        cluster, tools, jobs_tools.java_home(), plan.bridge_address.split("/")[0], **options
    )  # type: ignore[arg-type]
    rows = result["rows"]
    assert isinstance(rows, list) and {r["node"] for r in rows} == {w.address for w in cluster.workers}
    assert all(r["probe"] == jobs_tools.PROBE_VERSION for r in rows)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="ballast in the environment")
    parser.add_argument("--rate", default="1gbit", help="each node's link (tc tbf)")
    parser.add_argument("--jobs", type=int, default=2, help="jobs per way")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/jobs.py needs root (network namespaces)")
    tools = jobs_tools.tools_venv()
    java = jobs_tools.java_home()
    from envctl.adapters.blob_cache import default_cache_root

    with tempfile.TemporaryDirectory(prefix="jobs-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        start = time.monotonic()
        ballast = ballast_wheel(work / "wheels", int(args.size_gb * 2**30))
        lock = jobs_env.write_lock(work / "conda-lock.yml", [jobs_env.probe_wheel(work / "wheels"), ballast])
        print(
            f"environment: {ballast.stat().st_size / 1e9:.2f} GB ballast wheel + numpy, ray ({time.monotonic() - start:.0f}s)"
        )
        start = time.monotonic()
        jobs_env.build(lock, work / "image", work / "cache", base_cache=default_cache_root())
        print(f"envctl build: {time.monotonic() - start:.0f}s")
        start = time.monotonic()
        archive = work / "env.tar.gz"
        jobs_env.pack(work / "image", archive, work / "cache")
        pack_s = time.monotonic() - start
        print(f"envctl pack: {pack_s:.0f}s, {archive.stat().st_size / 1e9:.2f} GB")

        plan = plan_sandbox(3, directory=DIRECTORY, prefix=PREFIX, subnet=SUBNET, rate=args.rate)
        sandbox.down(DIRECTORY)
        sandbox.up(plan)
        try:
            master, *workers = plan.nodes
            with spark_cluster(master, workers, tools, java, work / "logs") as cluster:
                wn = cluster.workers
                _, push_s, push_bytes = measured(
                    wn, lambda: jobs_env.push(work / "image", plan.inventory, ",".join(w.name for w in wn))
                )
                pushed = [
                    measured(
                        wn,
                        lambda: run_job(
                            cluster, tools, plan, conf={"spark.pyspark.python": jobs_tools.PUSHED_PYTHON}
                        ),
                    )
                    for _ in range(args.jobs)
                ]
                shipped = [
                    measured(
                        wn,
                        lambda: run_job(
                            cluster, tools, plan, conf={"spark.pyspark.python": "./environment/bin/python"},
                            archives=[f"{archive}#environment"],
                        ),
                    )
                    for _ in range(args.jobs)
                ]  # fmt: skip
        finally:
            sandbox.down(DIRECTORY)

    def per_node(samples: list[tuple[object, float, dict[str, int]]]) -> float:
        return statistics.mean(b for _, _, nb in samples for b in nb.values())

    print(f"\nlinks {args.rate}, {len(wn)} workers, {args.jobs} jobs each way")
    print(f"{'':34}{'seconds':>10}{'MB per node':>14}")
    push_mb = statistics.mean(push_bytes.values()) / 1e6
    print(f"{'push, once per env change':34}{push_s:>10.1f}{push_mb:>14.1f}")
    for label, samples in (("job, env pushed in place", pushed), ("job, --archives env.tar.gz", shipped)):
        for i, (_, seconds, nb) in enumerate(samples, 1):
            print(f"{f'{label} #{i}':34}{seconds:>10.1f}{statistics.mean(nb.values()) / 1e6:>14.1f}")
    in_place_s = statistics.mean(s for _, s, _ in pushed)
    archive_s = statistics.mean(s for _, s, _ in shipped)
    saved = archive_s - in_place_s
    pays_off = f"after {push_s / saved:.1f} jobs" if saved > 0 else "never (no job was faster)"
    print(
        f"\nratio archive / in place, per job: {archive_s / in_place_s:.2f}x seconds, "
        f"{per_node(shipped) / max(per_node(pushed), 1):.0f}x bytes per node "
        f"(+ pack {pack_s:.0f}s once); the one push pays off {pays_off}"
    )


if __name__ == "__main__":
    main()
