"""Simulation: direct, relay trees and registry delivery (with and without a P2P mirror) at scale.

Run:  .venv/bin/python bench/fanout_sim.py [--nodes 100 1000 10000] [--size-gb 10] [--json out.json]
      .venv/bin/python bench/fanout_sim.py --calibrate fanout.json   (bench/fanout.py --json output)

The model is envctl.core.fanout_sim (its docstring and docs/fanout-bench.md state its assumptions).
Printed per cluster size and mode: p50, p99 and last completion, the last one over one image's
time on the sender's link, copies on the sender's link, the busiest link and its bytes, nodes
lost (died before completing; their children are re-parented and resume). A last block sets the
model beside Kraken's published benchmark. --calibrate runs the model on a bench/fanout.py run's
links and image and prints its error per mode.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envctl.core import fanout_sim as sim  # noqa: E402
from envctl.errors import EnvctlError  # noqa: E402

GBIT = 1e9 / 8  # bytes per second
# github.com/uber/kraken, README "Benchmark": a 3G image of 2 layers to 2600 hosts at once,
# 300MB/s limit on every agent, 5 trackers and 5 origins: p50 10 s, p99 18 s, p99.9 22 s
KRAKEN = {"hosts": 2600, "size": 3e9, "agent_rate": 300e6, "origins": 5, "p50": 10.0, "p99": 18.0}
ORIGIN_GBIT = 10.0  # not published: assumed 10 Gbit/s per origin


def fail(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit 2."""
    print(message, file=sys.stderr)
    sys.exit(2)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--size-gb", type=float, default=10.0, help="image size, GB (1e9 bytes)")
    ap.add_argument("--sender-gbit", type=float, default=25.0, help="the sender's uplink")
    ap.add_argument("--node-gbit", type=float, default=25.0, help="each node's downlink")
    ap.add_argument("--node-up-gbit", type=float, help="each node's uplink (default: --node-gbit)")
    ap.add_argument("--disk-gbyte", type=float, default=2.0, help="each node's disk write speed, GB/s")
    ap.add_argument("--registry-gbit", type=float, default=100.0, help="the registry's links")
    ap.add_argument("--chunk-mb", type=float, default=16.0, help="relay chunk / P2P piece, MB")
    ap.add_argument(
        "--layer-mb",
        type=float,
        default=500.0,
        help="registry: the nodes pull each layer once it is up (envctl's push); 0: after the whole upload",
    )
    ap.add_argument("--fanouts", type=int, nargs="+", default=[1, 2, 4, 8], help="relay tree fan-outs")
    ap.add_argument("--root-fanout", type=int, default=1, help="relay: nodes the sender feeds itself")
    ap.add_argument("--parallel", type=int, help="direct: nodes served at once (default: all)")
    ap.add_argument("--kill", type=float, default=0.01, help="fraction of nodes that die mid-transfer")
    ap.add_argument("--kill-window", type=float, help="they die within this many seconds (default: one copy)")
    ap.add_argument("--detect-s", type=float, default=1.0, help="seconds until an orphan re-parents")
    ap.add_argument("--slow", type=float, default=0.0, help="fraction of nodes with a slow disk")
    ap.add_argument("--slow-factor", type=float, default=0.1, help="their disk speed, as a fraction")
    ap.add_argument(
        "--slow-leaves",
        action="store_true",
        help="relay: the slow nodes are the tree's last leaves (a layout that knows them), not random",
    )
    ap.add_argument(
        "--link-efficiency",
        type=float,
        default=1.0,
        help="fraction of every link's rate that carries payload (the calibration's measured/model)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--calibrate", type=Path, metavar="RESULTS.json", help="bench/fanout.py --json output")
    args = ap.parse_args()
    if not args.layer_mb >= 0:
        fail(f"--layer-mb {args.layer_mb}: expected 0 (pull after the whole upload) or more")
    if not 0 < args.link_efficiency <= 1:
        fail(f"--link-efficiency {args.link_efficiency}: expected more than 0 and at most 1")
    return args


def scenario(args: argparse.Namespace, nodes: int) -> sim.Scenario:
    base = sim.Scenario(
        nodes=nodes,
        size=args.size_gb * 1e9,
        sender_up=args.sender_gbit * GBIT * args.link_efficiency,
        node_down=args.node_gbit * GBIT * args.link_efficiency,
        node_up=(args.node_up_gbit or args.node_gbit) * GBIT * args.link_efficiency,
        disk=args.disk_gbyte * 1e9,
        registry_up=args.registry_gbit * GBIT * args.link_efficiency,
        registry_down=args.registry_gbit * GBIT * args.link_efficiency,
        chunk=args.chunk_mb * 1e6,
        piece=min(args.layer_mb * 1e6, args.size_gb * 1e9),
        parallel=args.parallel,
        detect=args.detect_s,
        slow_factor=args.slow_factor,
    )
    import random

    rnd = random.Random(args.seed)
    count = round(nodes * args.slow)
    # in level order the last indices are leaves: slow nodes there hold back no subtree
    slow = frozenset(range(nodes - count, nodes) if args.slow_leaves else rnd.sample(range(nodes), count))
    window = args.kill_window or base.size / min(base.node_down, base.disk)
    deaths = sim.random_deaths(nodes, args.kill, window, args.seed) if args.kill else ()
    return sim.Scenario(**{**base.__dict__, "slow": slow, "deaths": deaths})


def row(label: str, out: sim.Outcome, took: float) -> str:
    j = out.as_json()
    return (
        f"  {label:15s} {j['p50_s']:9.1f} {j['p99_s']:9.1f} {j['max_s']:9.1f} {j['max_over_one_copy']:8.2f}x"
        f" {j['sender_copies']:8.2f} {out.busiest:>10s} {out.busiest_bytes / 1e9:10.2f} {out.lost:5d}"
        f" {took:6.2f}"
    )


HEADER = (
    f"  {'mode':15s} {'p50 s':>9s} {'p99 s':>9s} {'last s':>9s} {'/1 copy':>9s} {'sender×':>8s}"
    f" {'busiest':>10s} {'GB on it':>10s} {'lost':>5s} {'sim s':>6s}"
)


def runs(args: argparse.Namespace, sc: sim.Scenario) -> list[tuple[str, sim.Outcome, float]]:
    plan = [("direct", "direct", 0)] + [(f"relay f={f}", "relay", f) for f in args.fanouts]
    plan += [("registry", "registry", 0), ("registry+p2p", "registry+p2p", 0)]
    done = []
    for label, mode, fanout in plan:
        t0 = time.perf_counter()
        out = sim.simulate(sc, mode, fanout=fanout or 1, root_fanout=args.root_fanout)
        done.append((label, out, time.perf_counter() - t0))
    return done


def kraken(args: argparse.Namespace) -> dict[str, Any]:
    """Kraken's published setup through the model: the image already in the origins."""
    rate = KRAKEN["agent_rate"]
    sc = sim.Scenario(
        nodes=int(KRAKEN["hosts"]),
        size=KRAKEN["size"],
        sender_up=rate,
        node_down=rate,
        node_up=rate,
        registry_up=KRAKEN["origins"] * ORIGIN_GBIT * GBIT,
        chunk=4e6,  # Kraken's default piece size is 4 MB
        preloaded=True,
    )
    out = sim.registry_p2p(sc)
    no_mirror = sim.registry(sc)
    print(
        f"\nKraken (github.com/uber/kraken, README 'Benchmark'): 3 GB, 2600 hosts, 300 MB/s per agent,"
        f" 5 origins: published p50 {KRAKEN['p50']:.0f} s, p99 {KRAKEN['p99']:.0f} s."
        f"\n  model, registry+p2p (origins {ORIGIN_GBIT:g} Gbit/s each, assumed): p50 {out.percentile(50):.1f} s,"
        f" p99 {out.percentile(99):.1f} s; without the mirror: p50 {no_mirror.percentile(50):.0f} s."
        f"\n  The model has no stragglers: its p99 sits at its p50, where Kraken's is {KRAKEN['p99'] / KRAKEN['p50']:.1f}x."
    )
    return {"published": KRAKEN, "model_p2p": out.as_json(), "model_no_mirror": no_mirror.as_json()}


def relay_shape(reported: Any, args: argparse.Namespace) -> tuple[int, int]:
    """(fan-out, nodes the sender feeds) of the tree a push reported, else the options'."""
    reported = reported if isinstance(reported, dict) else {}
    fanout = reported.get("relay_fanout") or reported.get("fanout")
    tree = reported.get("tree")
    seeds = sum(1 for p in tree.values() if p is None) if isinstance(tree, dict) else None
    ok = isinstance(fanout, int) and fanout >= 1
    return (fanout if ok else args.fanouts[0]), (seeds or args.root_fanout)


def _overlapped(doc: dict[str, Any]) -> bool:
    reported = (doc.get("modes", {}).get("registry") or {}).get("fanout_reported") or {}
    return isinstance(reported, dict) and reported.get("upload_overlapped") is True


def calibrate(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The model on a bench/fanout.py run's numbers; its error per mode, total and transfer."""
    try:
        doc = json.loads(path.read_text())
        nodes, size = int(doc["nodes"]), float(doc["image_bytes"])
        rates = (float(doc[k]) / 8 * args.link_efficiency for k in ("sender_bps", "node_bps", "registry_bps"))
        sender, node, reg = rates
        modes = doc["modes"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        fail(f"--calibrate {path}: not bench/fanout.py --json output ({exc})")
    sc = sim.Scenario(
        nodes=nodes,
        size=size,
        sender_up=sender,
        node_down=node,
        node_up=node,
        registry_up=reg,
        registry_down=reg,
        chunk=min(size, args.chunk_mb * 1e6),
        # that run's registry push announced each layer to the nodes once it was up
        piece=size / int(doc.get("layers") or 1) if _overlapped(doc) else 0.0,
    )
    print(
        f"calibration against {path}: {nodes} nodes, {size / 1e6:.1f} MB,"
        f" sender {float(doc['sender_bps']) / 1e6:g} Mbit/s, link efficiency {args.link_efficiency:g}"
    )
    print(
        f"  {'mode':9s} {'measured s':>11s} {'transfer s':>11s} {'model s':>8s} {'error':>8s} {'err xfer':>9s}"
    )
    report: dict[str, Any] = {}
    as_model = {"direct": "direct", "ssh-copy": "direct", "relay": "relay", "registry": "registry"}
    for mode, got in modes.items():
        if not got.get("available") or mode not in as_model or "failed" in got:
            why = "failed in that run" if "failed" in got else "not available in that build"
            print(f"  {mode:9s} not measured ({why})")
            continue
        fanout, seeds = relay_shape(got.get("fanout_reported"), args)
        out = sim.simulate(sc, as_model[mode], fanout=fanout, root_fanout=seeds)
        total = float(got["seconds"])
        # the baseline's wall time is all transfer (a stream per node, nothing else)
        xfer = got.get("transfer_seconds") or (total if mode == "ssh-copy" else None)
        model = out.makespan
        err = (model - total) / total
        err_x = (model - xfer) / xfer if xfer else None
        bytes_err = (out.sender_bytes - got["sender_link_bytes"]) / got["sender_link_bytes"]
        err_x_txt = f"{err_x * 100:+8.1f}%" if err_x is not None else f"{'-':>9s}"
        xfer_txt = f"{xfer:11.1f}" if xfer else f"{'-':>11s}"
        print(f"  {mode:9s} {total:11.1f} {xfer_txt} {model:8.1f} {err * 100:+7.1f}% {err_x_txt}")
        report[mode] = {
            "measured_s": total,
            "transfer_s": xfer,
            "model_s": round(model, 3),
            "error": round(err, 4),
            "error_transfer": round(err_x, 4) if err_x is not None else None,
            "sender_bytes_error": round(bytes_err, 4),
            # the --link-efficiency that would make the model's transfer match this one
            "implied_link_efficiency": round(args.link_efficiency * model / xfer, 3) if xfer else None,
        }
    implied = [r["implied_link_efficiency"] for r in report.values() if r["implied_link_efficiency"]]
    print("  (error = (model - measured) / measured; the model is the wire alone, no set-up or unpacking)")
    if implied:
        print(f"  transfers imply --link-efficiency {min(implied):.2f} to {max(implied):.2f}")
    return report


def main() -> int:
    args = parse_args()
    try:
        if args.calibrate:
            result: dict[str, Any] = {"calibration": calibrate(args.calibrate, args)}
        else:
            result = {
                "schema": "envctl.bench-fanout-sim/1",
                "args": {k: str(v) for k, v in vars(args).items()},
            }
            for n in args.nodes:
                sc = scenario(args, n)
                print(
                    f"\n== {n} nodes: {args.size_gb:g} GB, sender {args.sender_gbit:g} Gbit/s, nodes"
                    f" {args.node_gbit:g} Gbit/s, disk {args.disk_gbyte:g} GB/s, registry"
                    f" {args.registry_gbit:g} Gbit/s, chunk {args.chunk_mb:g} MB; {len(sc.deaths)} die,"
                    f" {len(sc.slow)} slow; one copy on the sender's link {sc.one_copy:.1f} s,"
                    f" a node's own floor {sc.size / min(sc.node_down, sc.disk):.1f} s =="
                )
                print(HEADER)
                result[str(n)] = {}
                for label, out, took in runs(args, sc):
                    print(row(label, out, took))
                    result[str(n)][label] = {**out.as_json(), "sim_seconds": round(took, 3)}
            result["kraken"] = kraken(args)
    except EnvctlError as exc:
        fail(f"error: {exc.message}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
