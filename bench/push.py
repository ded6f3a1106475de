"""Benchmark: envctl push vs `docker save | ssh node docker load`, node by node, on sandbox nodes.

Run as root:  .venv/bin/python bench/push.py [--nodes 4 8] [--size-mb 200]

A sandbox of docker-runtime nodes (own sshd and dockerd each, links shaped with tc) is brought up,
plus a sender Docker engine on this machine for the baseline. The sender's link (the sandbox
bridge) is shaped to --sender-rate. For each node count, in the same invocation:
  1. baseline first push: `docker save IMG | ssh node docker load`, one node after the other;
  2. envctl first push (all nodes in parallel, docker runtime);
  3. one small package changes (a new top layer); baseline and envctl re-push it.
Printed: wall times, time ratios baseline/envctl, bytes on the wire per node (the host-side
veth's tx counter: SSH and TCP overhead included) and envctl's payload bytes, and the two
targets: re-push <= changed layer + 1 MB per node; first push <= 1.2x the sender link's time
for the bytes envctl must send.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envctl.adapters.inventory_file import load_inventory  # noqa: E402
from envctl.adapters.oci_layout import OciImage, read_image  # noqa: E402
from envctl.adapters.ssh_pool import SSHPool  # noqa: E402
from envctl.core.sandbox import SandboxPlan, plan_sandbox, rate_bits  # noqa: E402
from envctl.services.cluster import sandbox  # noqa: E402
from envctl.services.deliver.push import PushOptions, push  # noqa: E402

PREFIX, SUBNET = "nd", "10.251.9.64/26"
BENCH_DIR = "/var/tmp/nd-bench"
SENDER_SOCK = "/var/run/nd-bench-sender.sock"


# ------------------------------------------------------------------ image
def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _put(root: Path, data: bytes) -> dict[str, Any]:
    hexd = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / hexd).write_bytes(data)
    return {"digest": f"sha256:{hexd}", "size": len(data)}


def write_image(root: Path, layers: list[bytes], tag: str) -> OciImage:
    """An OCI layout with these (uncompressed) layer tars, gzip level 1."""
    root.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descs, diff_ids = [], []
    for raw in layers:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip.compress(raw, compresslevel=1, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_put(root, gz)})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cdesc = _put(root, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cdesc},
        "layers": descs,
    }
    mdesc = _put(root, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **mdesc,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return read_image(root)


def make_images(where: Path, size_mb: int, seed: int) -> tuple[OciImage, OciImage, bytes]:
    """v1: a big 'framework' layer (half random, half text) + a small package layer; v2: the
    same with the small package changed. Returns both and the changed layer's bytes."""
    rnd = random.Random(seed)
    half = size_mb * 1_000_000 // 2
    big = {f"lib/blob{i}.so": rnd.randbytes(half // 8) for i in range(8)}
    words = [rnd.randbytes(6).hex() for _ in range(2000)]
    text = " ".join(rnd.choice(words) for _ in range(half // 13)).encode()
    big["share/docs.txt"] = text[:half]
    base = _tar(big)
    pkg1 = _tar({"site-packages/smallpkg/__init__.py": b"VERSION = 1\n" + rnd.randbytes(150_000)})
    pkg2 = _tar({"site-packages/smallpkg/__init__.py": b"VERSION = 2\n" + rnd.randbytes(150_000)})
    v1 = write_image(where / f"v1-{seed}", [base, pkg1], f"bench{seed}:v1")
    v2 = write_image(where / f"v2-{seed}", [base, pkg2], f"bench{seed}:v2")
    return v1, v2, pkg2


def docker_archive(img: OciImage, tag: str) -> bytes:
    """A `docker load` archive of an OCI layout (for the sender engine)."""
    files = {
        "manifest.json": json.dumps(
            [
                {
                    "Config": img.config.digest[7:] + ".json",
                    "RepoTags": [tag],
                    "Layers": [b.digest[7:] + "/layer.tar" for b in img.layers],
                }
            ]
        ).encode(),
        img.config.digest[7:] + ".json": img.blob_path(img.config.digest).read_bytes(),
    }
    for b in img.layers:
        files[b.digest[7:] + "/layer.tar"] = img.blob_path(b.digest).read_bytes()
    return _tar(files)


# ------------------------------------------------------------------ infrastructure
def sh(*argv: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), check=True, capture_output=True, **kw)


def start_sender(workdir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "dockerd",
            "--storage-driver=vfs",
            "--iptables=false",
            "--bridge=none",
            f"--data-root={workdir}/sender-data",
            "--exec-root=/var/run/nd-bench-sx",
            f"--host=unix://{SENDER_SOCK}",
            "--pidfile=/var/run/nd-bench-sender.pid",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "sender.log").open("wb"),  # lives as long as dockerd
    )
    for _ in range(300):
        if (
            subprocess.run(["docker", "-H", f"unix://{SENDER_SOCK}", "info"], capture_output=True).returncode
            == 0
        ):
            return proc
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("sender dockerd did not start; see sender.log")


def tx_bytes(veth: str) -> int:
    return int(Path(f"/sys/class/net/{veth}/statistics/tx_bytes").read_text())


def baseline(plan: SandboxPlan, nodes: list[Any], tag: str) -> tuple[float, dict[str, int]]:
    """`docker save | ssh node docker load`, one node after the other."""
    wire: dict[str, int] = {}
    start = time.monotonic()
    for node in nodes:
        before = tx_bytes(node.veth)
        save = subprocess.Popen(
            ["docker", "-H", f"unix://{SENDER_SOCK}", "save", tag], stdout=subprocess.PIPE
        )
        load = subprocess.run(
            [
                "ssh",
                "-i",
                plan.client_key,
                "-o",
                f"UserKnownHostsFile={plan.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                f"root@{node.address}",
                "docker",
                "-H",
                str(node.docker_host),
                "load",
            ],
            stdin=save.stdout,
            capture_output=True,
            check=False,
        )
        save.wait()
        if load.returncode or save.returncode:
            raise SystemExit(f"baseline failed on {node.name}: {load.stderr.decode()[-300:]}")
        wire[node.name] = tx_bytes(node.veth) - before
    return time.monotonic() - start, wire


def run_envctl(
    plan: SandboxPlan,
    nodes: list[Any],
    img: OciImage,
    env: str,
) -> tuple[float, dict[str, int], dict[str, int], dict[str, float]]:
    targets = load_inventory(Path(plan.inventory)).select(",".join(n.name for n in nodes))
    before = {n.name: tx_bytes(n.veth) for n in nodes}
    start = time.monotonic()
    with SSHPool() as pool:
        report = push(img, targets, pool, PushOptions(env=env, parallel=len(nodes)))
    took = time.monotonic() - start
    if report.outcome != "all":
        raise SystemExit(f"envctl push failed: {json.dumps(report.as_json(), indent=1)}")
    wire = {n.name: tx_bytes(n.veth) - before[n.name] for n in nodes}
    phases = dict(report.timings)
    # the transfer alone: from the first byte asked for to the last blob verified, slowest node
    delivered = report.nodes.succeeded
    phases["transfer"] = max(r.seconds for r in delivered.values())
    return took, wire, {k: r.bytes_sent for k, r in delivered.items()}, phases


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


def scenario(plan: SandboxPlan, count: int, work: Path, size_mb: int, sender_bps: int) -> dict[str, Any]:
    nodes = list(plan.nodes[:count])
    v1, v2, _ = make_images(work / f"img{count}", size_mb, seed=count)
    changed = next(b for b in v2.layers if b not in v1.layers).size
    tags = (f"nd-bench{count}:v1", f"nd-bench{count}:v2")
    for img, tag in zip((v1, v2), tags, strict=True):
        sh("docker", "-H", f"unix://{SENDER_SOCK}", "load", input=docker_archive(img, tag))

    base1_t, base1_w = baseline(plan, nodes, tags[0])
    for node in nodes:  # envctl starts from nodes that never saw the image
        sh("docker", "-H", str(node.docker_host), "rmi", tags[0])
    env1_t, env1_w, env1_p, env1_phase = run_envctl(plan, nodes, v1, f"bench{count}")
    base2_t, base2_w = baseline(plan, nodes, tags[1])
    env2_t, env2_w, env2_p, _ = run_envctl(plan, nodes, v2, f"bench{count}")

    payload = sum(env1_p.values())
    ideal = payload * 8 / sender_bps
    limit = changed + 1_000_000
    print(
        f"\n== {count} nodes, image {mb(sum(b.size for b in v1.blobs))} compressed,"
        f" changed layer {mb(changed)} =="
    )
    print(
        f"first push  baseline {base1_t:7.1f} s  envctl {env1_t:7.1f} s"
        f"  ratio baseline/envctl {base1_t / env1_t:5.2f}x"
    )
    print(
        f"re-push     baseline {base2_t:7.1f} s  envctl {env2_t:7.1f} s"
        f"  ratio baseline/envctl {base2_t / env2_t:5.2f}x"
    )
    print(
        f"first push: envctl payload {mb(payload)} total; sender link needs {ideal:6.1f} s;"
        f" envctl/link = {env1_t / ideal:4.2f}x (target <= 1.2x); the transfer alone (slowest"
        f" node) {env1_phase['transfer']:.1f} s = {env1_phase['transfer'] / ideal:4.2f}x;"
        f" stage+prepare {env1_phase['stage']:.1f} s, switch {env1_phase['activate']:.1f} s"
    )
    for node in nodes:
        n = node.name
        print(
            f"  {n}: wire first baseline {mb(base1_w[n])} envctl {mb(env1_w[n])} |"
            f" re-push baseline {mb(base2_w[n])} envctl {mb(env2_w[n])}"
            f" (payload {mb(env2_p[n])}, limit {mb(limit)}:"
            f" {'ok' if env2_w[n] <= limit else 'OVER'})"
        )
    return {
        "nodes": count,
        "changed_layer": changed,
        "first": {
            "baseline_s": base1_t,
            "envctl_s": env1_t,
            "ideal_s": ideal,
            "baseline_wire": base1_w,
            "envctl_wire": env1_w,
            "envctl_payload": env1_p,
            "envctl_phases": env1_phase,
        },
        "repush": {
            "baseline_s": base2_t,
            "envctl_s": env2_t,
            "baseline_wire": base2_w,
            "envctl_wire": env2_w,
            "envctl_payload": env2_p,
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--sender-rate", default="500mbit", help="tc rate of the sender's link")
    ap.add_argument("--node-rate", default="1gbit", help="tc rate of each node's link")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/push.py needs root (sandbox nodes)")
    os.environ.setdefault("ENVCTL_STATE_DIR", tempfile.mkdtemp(prefix="nd-bench-state-"))
    work = Path(tempfile.mkdtemp(prefix="nd-bench-", dir="/var/tmp"))
    plan = plan_sandbox(
        max(args.nodes),
        directory=BENCH_DIR,
        prefix=PREFIX,
        subnet=SUBNET,
        runtime="docker",
        rate=args.node_rate,
    )
    sandbox.down(BENCH_DIR)
    sender = None
    results = []
    try:
        sandbox.up(plan)
        burst = str(max(256 * 1024, rate_bits(args.sender_rate) // 8 // 100))
        sh(
            "tc",
            "qdisc",
            "replace",
            "dev",
            plan.bridge,
            "root",
            "tbf",
            "rate",
            args.sender_rate,
            "burst",
            burst,
            "latency",
            "50ms",
        )
        sender = start_sender(work)
        print(
            f"sandbox: {max(args.nodes)} docker nodes, node links {args.node_rate},"
            f" sender link {args.sender_rate}; image ~{args.size_mb} MB"
        )
        for count in args.nodes:
            results.append(scenario(plan, count, work, args.size_mb, rate_bits(args.sender_rate)))
    finally:
        if sender is not None:
            sender.terminate()
            sender.wait(60)
        sandbox.down(BENCH_DIR)
        subprocess.run(["rm", "-rf", str(work), "/var/run/nd-bench-sx"], check=False)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
