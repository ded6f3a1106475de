"""The smoke check of an environment: import every package, and on GPUs run a tiny kernel.

``SCRIPT`` runs inside the image's own Python (standard library only); it lists the
distributions installed in the environment's site-packages (the lock's packages), imports each
one's top-level modules, reports versions and the GPUs torch / jax / tensorflow see, and with
``--kernels`` runs one small checked computation per framework on a GPU. ``envctl smoke`` runs
it at build time in a container; the agent's ``smoke`` command (``cmd_smoke``) runs it on a node
inside the node's runtime, on the environment that is current there (``envctl verify``,
``push --verify``). Standard library only, like all of the agent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import time
from typing import Any

from envctl.node.checks import show
from envctl.node.runtimes import docker_env, image_ref, prefix_dir
from envctl.node.state import actual, load_state
from envctl.node.store import AgentError, Store

# Runs inside the image's Python; only the standard library may be assumed.
SCRIPT = r"""
import importlib, importlib.metadata as md, importlib.util, json, sys
out = {"python": sys.version.split()[0], "packages": [], "gpus": {}, "kernels": {}}
site_dirs = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
def tops(dist):
    # top_level.txt when present (entries may be paths: "nvidia/cudnn"); else packages with an
    # __init__.py and top-level modules from RECORD. Private names ("_foo") and auditwheel's
    # "*.libs" folders are not import targets.
    names = set()
    text = dist.read_text("top_level.txt")
    if text:
        for entry in text.split():
            entry = entry.strip().replace("/", ".")
            if entry.endswith(".__init__"):
                entry = entry[: -len(".__init__")]
            names.add(entry)
    else:
        for f in dist.files or []:
            parts = f.parts
            if len(parts) == 2 and parts[1] == "__init__.py":
                names.add(parts[0])
            elif len(parts) == 1 and parts[0].endswith((".py", ".so")):
                names.add(parts[0].split(".")[0])
    return sorted(
        n for n in names
        if n and not n.split(".")[-1].startswith("_")
        and all(part.isidentifier() for part in n.split("."))
    )
mods = {}
for dist in sorted(md.distributions(path=site_dirs), key=lambda d: d.metadata["Name"].lower()):
    entry = {"name": dist.metadata["Name"], "version": dist.version, "modules": {}, "ok": True}
    found = 0
    for name in tops(dist):
        try:
            spec = importlib.util.find_spec(name)
        except Exception as exc:
            spec, entry["ok"] = None, False
            entry["modules"][name] = "error: %s: %s" % (type(exc).__name__, exc)
            continue
        if spec is None:  # listed by stale metadata (or a wheel's stray folder): not shipped
            entry["modules"][name] = "absent"
            continue
        found += 1
        targets = [name]
        if spec.origin in (None, "namespace"):
            # a bare folder (nvidia/, jaraco/): import the dist's own packages inside it, never
            # the folder alone, which proves nothing and could shadow a real package
            entry["modules"][name] = "namespace"
            targets = sorted({"%s.%s" % (name, f.parts[1]) for f in dist.files or []
                              if len(f.parts) == 3 and f.parts[0] == name
                              and f.parts[2] == "__init__.py"})
        for target in targets:
            try:
                module = importlib.import_module(target)
                mods[target] = module
                entry["modules"][target] = str(getattr(module, "__version__", ""))
            except Exception as exc:
                entry["ok"] = False
                entry["modules"][target] = "error: %s: %s" % (type(exc).__name__, exc)
    if entry["modules"] and not found:
        entry["ok"] = False
    out["packages"].append(entry)
def probe(name, fn):
    if name in mods:
        try:
            out["gpus"][name] = fn(mods[name])
        except Exception as exc:
            out["gpus"][name] = "error: %s" % exc
probe("torch", lambda t: [t.cuda.get_device_name(i) if hasattr(t.cuda, "get_device_name")
      else str(i) for i in range(t.cuda.device_count())] if t.cuda.is_available() else [])
probe("jax", lambda j: [str(d) for d in j.devices() if d.platform == "gpu"])
probe("tensorflow", lambda tf: [d.name for d in tf.config.list_physical_devices("GPU")])
# With --kernels (a GPU node, a CUDA image): one tiny kernel per framework present, checked.
def kernel(name, fn):
    if name in mods:
        try:
            out["kernels"][name] = "ok: %s" % fn(mods[name])
        except Exception as exc:
            out["kernels"][name] = "error: %s: %s" % (type(exc).__name__, exc)
def torch_kernel(t):
    if not t.cuda.is_available():
        raise RuntimeError("torch.cuda.is_available() is False")
    x = t.ones(64, 64, device="cuda")
    got = float((x @ x).sum().item())
    t.cuda.synchronize()
    if got != 64.0 ** 3:
        raise RuntimeError("a 64x64 matmul summed to %s, not %s" % (got, 64 ** 3))
    return "matmul on %s" % t.cuda.get_device_name(0)
def jax_kernel(j):
    gpus = [d for d in j.devices() if d.platform == "gpu"]
    if not gpus:
        raise RuntimeError("jax.devices() has no GPU: %s" % j.devices())
    import jax.numpy as jnp
    got = float(j.device_put(jnp.ones(1024), gpus[0]).sum())
    if got != 1024.0:
        raise RuntimeError("a sum of 1024 ones gave %s" % got)
    return "sum on %s" % gpus[0]
def tf_kernel(tf):
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise RuntimeError("tf.config.list_physical_devices('GPU') is empty")
    with tf.device("/GPU:0"):
        got = float(tf.reduce_sum(tf.ones([1024])))
    if got != 1024.0:
        raise RuntimeError("a sum of 1024 ones gave %s" % got)
    return "reduce_sum on %s" % gpus[0].name
if "--kernels" in sys.argv[1:]:
    kernel("torch", torch_kernel)
    kernel("jax", jax_kernel)
    kernel("tensorflow", tf_kernel)
print(json.dumps(out))
"""

#: Bind the node's /dev, /proc and /sys into the tree (in a mount namespace of its own, gone
#: with the process: the tree and the node are untouched), then chroot. Positional arguments
#: only: MOUNT CHROOT TREE ARGV...; a directory that is a link is never mounted over.
_CHROOT = (
    "mount=$1; chroot=$2; root=$3; shift 3; for d in dev proc sys; do "
    'if [ -d "$root/$d" ] && [ ! -L "$root/$d" ]; then "$mount" --rbind "/$d" "$root/$d" || exit 125; fi; '
    'done; exec "$chroot" "$root" "$@"'
)
MAX_OUTPUT = 8 << 20  # bytes of the check's output the agent reads
_SBIN = os.pathsep + "/usr/sbin:/sbin:/usr/bin:/bin"


def image_config(store: Store, digest: str) -> dict[str, Any]:
    """The (verified) image config of manifest ``digest``."""
    config, _ = store.image_blobs(digest)
    doc = store.read_json_blob(config)
    if not isinstance(doc, dict):
        raise AgentError(f"config of {digest[:19]} is not a JSON object", "input")
    return doc


def _of(doc: Any, key: str, kind: type) -> Any:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, kind) else kind()


def _runtime_config(doc: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    runtime = _of(doc, "config", dict)
    labels, env = _of(runtime, "Labels", dict), _of(runtime, "Env", list)
    good = {str(k): v for k, v in labels.items() if isinstance(v, str)}
    return good, [e for e in env[:1000] if isinstance(e, str) and "=" in e and "\x00" not in e]


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + _SBIN)
    if found is None:
        raise AgentError(f"{name} not found on the node: the smoke check needs it", "runtime")
    return found


def _argv(args: argparse.Namespace, state: dict[str, Any], python: str, code: list[str]) -> list[str]:
    """The command that runs ``python CODE...`` inside the node's runtime."""
    runtime, digest = state["runtime"], state["current"]["digest"]
    if runtime in ("docker", "podman"):
        gpus = []
        if args.gpus:
            gpus = ["--gpus", "all"] if runtime == "docker" else ["--device", "nvidia.com/gpu=all"]
        name = f"envctl-smoke-{args.env}-{os.getpid()}"
        return [
            args.runtime, "run", "--rm", "--name", name, "--network", "none", *gpus,
            "-e", "PYTHONDONTWRITEBYTECODE=1", "--entrypoint", python,
            image_ref(args.env, digest), *code,
        ]  # fmt: skip
    if runtime == "prefix":
        if os.geteuid() != 0:
            raise AgentError(
                "the prefix runtime's smoke check runs the environment chrooted into its tree, "
                "which needs root: set `become = true` for the node",
                "runtime",
            )
        tree = prefix_dir(args, args.env, digest)
        return [_tool("unshare"), "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                _CHROOT, "envctl-smoke", _tool("mount"), _tool("chroot"), tree, python, *code]  # fmt: skip
    raise AgentError(
        f"runtime {runtime} keeps the image's blobs only: nothing on this node runs it, so "
        "nothing can be imported (push to a docker, podman or prefix node to verify)",
        "unsupported",
    )


def _run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run the check in its own process group; past ``timeout`` the whole group is killed."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AgentError(f"the smoke check was still running after {timeout:g}s: killed", "timeout") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out[-MAX_OUTPUT:], err[-MAX_OUTPUT:])


def cmd_smoke(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Import every package of ENV's current environment inside the node's runtime (and with
    ``--gpus``, for a CUDA image, run a kernel per framework); the environment must be intact
    and, given ``--digest``, be that digest."""
    state = load_state(store, args.env)
    current = (state or {}).get("current")
    if state is None or not current:
        raise AgentError(f"{args.env} is not active on this node: nothing to verify", "absent")
    digest = current["digest"]
    if args.digest and digest != args.digest:
        raise AgentError(f"{args.env} here is {digest[:19]}, not {args.digest[:19]}", "drift")
    if state["runtime"] not in ("docker", "podman", "prefix"):
        _argv(args, state, "", [])  # says why nothing runs an image on such a node
    found = actual(store, argparse.Namespace(**vars(args)), state)
    if found["drift"]:
        raise AgentError(f"{args.env} is not what was pushed: {found['drift']}", "drift")
    labels, image_env = _runtime_config(image_config(store, digest))
    prefix = labels.get("dev.envctl.env.prefix", "")
    if not prefix.startswith("/") or any(c in prefix for c in "\x00\n"):
        raise AgentError(
            f"{digest[:19]} records no environment (label dev.envctl.env.prefix): "
            "not an image envctl built, so there is no package list to import",
            "input",
        )
    cuda = labels.get("dev.envctl.cuda", "none")
    kernels = bool(args.gpus) and cuda != "none"
    python = prefix.rstrip("/") + "/bin/python"
    code = ["-c", SCRIPT] + (["--kernels"] if kernels else [])
    args.runtime = state["runtime"]
    if args.runtime in ("docker", "podman"):
        env = docker_env(args)
    else:
        env = dict(item.split("=", 1) for item in image_env)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # the tree is fingerprinted: leave it as unpacked
    argv = _argv(args, state, python, code)
    start = time.monotonic()
    try:
        result = _run(argv, env, args.timeout)
    except AgentError:
        if args.runtime in ("docker", "podman"):  # the client is gone; its container may not be
            subprocess.run([args.runtime, "rm", "-f", argv[4]], capture_output=True, env=env, check=False)
        raise
    seconds = time.monotonic() - start
    lines = result.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        doc = json.loads(lines[-1]) if lines else None
    except ValueError:
        doc = None
    if result.returncode != 0 or not isinstance(doc, dict):
        tail = result.stderr.decode("utf-8", "replace").strip().splitlines() or ["(no output)"]
        raise AgentError(
            f"the smoke check exited {result.returncode} in runtime {args.runtime}: {show(tail[-1])}",
            "smoke",
        )
    return {
        "env": args.env,
        "digest": digest,
        "runtime": args.runtime,
        "cuda": cuda,
        "kernels_asked": kernels,
        "seconds": round(seconds, 3),
        "result": doc,
    }
