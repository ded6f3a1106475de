"""Streaming throughput of envctl's SSH transport vs the OpenSSH client, on a sandbox node.

    python bench/transport.py [--mib 200] [--rate 1gbit] [--repeat 3]   (as root)

Brings up a one-node sandbox (prefix psb, 10.251.7.192/27), streams the same bytes into
``cat >/dev/null`` on the node with ``SSHTransport.upload`` and with ``ssh node 'cat >/dev/null'``
(the baseline, run in the same invocation; every run opens its own connection on both sides),
prints the medians and their ratio, and takes the sandbox down.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from envctl.adapters.inventory_file import load_inventory
from envctl.adapters.ssh import connect
from envctl.core.sandbox import plan_sandbox
from envctl.services.cluster import sandbox


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--rate", default=None, help="shape the node link, e.g. 1gbit")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    nbytes = args.mib * 1024 * 1024
    directory = f"/var/tmp/psb-{os.getpid()}"
    plan = plan_sandbox(1, directory=directory, prefix="psb", subnet="10.251.7.192/27", rate=args.rate)
    sandbox.up(plan)
    try:
        spec = load_inventory(Path(plan.inventory)).node("n1")
        with tempfile.TemporaryFile() as payload:
            payload.write(os.urandom(1024 * 1024) * args.mib)
            envctl_s, openssh_s = [], []
            for _ in range(args.repeat):
                payload.seek(0)
                start = time.monotonic()  # both sides pay for their own connection setup
                with connect(spec) as transport:
                    transport.upload(["sh", "-c", "cat >/dev/null"], payload, size=nbytes)
                envctl_s.append(time.monotonic() - start)
                payload.seek(0)
                start = time.monotonic()
                subprocess.run(
                    ["ssh", "-i", plan.client_key, "-o", f"UserKnownHostsFile={plan.known_hosts}",
                     "-o", "BatchMode=yes", f"root@{spec.host}", "cat >/dev/null"],
                    stdin=payload, check=True,
                )  # fmt: skip
                openssh_s.append(time.monotonic() - start)
    finally:
        sandbox.down(directory)
    ours, theirs = statistics.median(envctl_s), statistics.median(openssh_s)
    mb = nbytes / 1e6
    print(f"payload {args.mib} MiB, link {args.rate or 'unshaped'}, median of {args.repeat}")
    print(f"envctl SSHTransport.upload : {ours:6.2f} s  {mb / ours:7.1f} MB/s")
    print(f"ssh node 'cat >/dev/null'  : {theirs:6.2f} s  {mb / theirs:7.1f} MB/s  (baseline)")
    print(f"time ratio envctl/openssh  : {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
