"""A fleet's targets from its nodes' facts: classes of like nodes, and the profile held against them.

Pure. ``partition`` puts nodes that one image can serve the same way together: same CPU arch,
same driver branch, same set of GPU compute capabilities. ``fleet_targets`` turns the facts of a
set of nodes into the solver's ``Targets`` (the lowest driver and glibc of them, every GPU they
hold, every arch), keeping what only the profile can say (forward compatibility). ``conflicts``
holds the profile's own targets against the facts and says, per difference, which nodes differ
("the profile says driver 550.54.15, nodes gpu[07-08] have 535.104.05").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from packaging.version import InvalidVersion, Version

from envctl.core.hostlist import compress
from envctl.core.matrix import Matrix
from envctl.core.node_facts import NodeFacts
from envctl.core.profile import ARCHES, Targets

#: /proc/cpuinfo vendor_id -> the profile's cpu_vendor
VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}


@dataclass(frozen=True)
class NodeClass:
    """Nodes one image serves alike: CPU arch, driver branch (R550) and GPU compute capabilities."""

    arch: str | None
    branch: str | None  # "R550"; None: no NVIDIA driver
    ccs: tuple[str, ...]  # sorted, e.g. ("8.9", "9.0"); () on CPU-only nodes
    nodes: tuple[str, ...]

    @property
    def name(self) -> str:
        """A stable, readable name: ``x86_64-r550-sm_90`` or ``aarch64-cpu``."""
        parts = [self.arch or "unknown-arch"]
        parts.append(self.branch.lower() if self.branch else "cpu")
        parts.extend("sm_" + cc.replace(".", "") for cc in self.ccs)
        return "-".join(parts)

    @property
    def hosts(self) -> str:
        """The nodes as one hostlist expression."""
        return compress(self.nodes)


def branch_of(driver: str | None) -> str | None:
    """``550.54.15`` -> ``R550`` (NVIDIA's branch naming); None for no or unreadable driver."""
    if not driver:
        return None
    major = driver.split(".", 1)[0]
    return f"R{major}" if major.isdigit() else None


def ccs_of(facts: NodeFacts, matrix: Matrix) -> tuple[str, ...]:
    """The node's GPU compute capabilities; a GPU that did not report one is looked up by name."""
    found = set()
    for gpu in facts.gpus:
        cc = gpu.cc
        if cc is None:
            known = matrix.find_gpu(gpu.name)
            cc = _cc(known.cc) if known is not None else None
        if cc is not None:
            found.add(cc)
    return tuple(sorted(found, key=lambda cc: _version(cc) or Version("0")))


def partition(facts: Mapping[str, NodeFacts], matrix: Matrix) -> tuple[NodeClass, ...]:
    """Classes of ``facts``' nodes, largest first (ties by name), nodes in the order given."""
    members: dict[tuple[str | None, str | None, tuple[str, ...]], list[str]] = {}
    for name, f in facts.items():
        key = (f.arch, branch_of(f.driver) if f.gpus or f.driver else None, ccs_of(f, matrix))
        members.setdefault(key, []).append(name)
    classes = [NodeClass(arch, branch, ccs, tuple(nodes)) for (arch, branch, ccs), nodes in members.items()]
    return tuple(sorted(classes, key=lambda c: (-len(c.nodes), c.name)))


def unknowns(facts: Mapping[str, NodeFacts], matrix: Matrix) -> tuple[str, ...]:
    """What the facts leave unsaid that a solve needs (arch; the CC of each GPU), in words."""
    problems: dict[str, list[str]] = {}
    for name, f in facts.items():
        if f.arch not in ARCHES:
            problems.setdefault(f"CPU arch {f.arch or 'unknown'}", []).append(name)
        for gpu in f.gpus:
            if gpu.cc is None and matrix.find_gpu(gpu.name) is None:
                problems.setdefault(f"GPU {gpu.name!r} with no compute capability", []).append(name)
        if f.gpus and f.driver is None:
            problems.setdefault("GPUs but no readable driver version", []).append(name)
    return tuple(f"nodes {compress(nodes)}: {what}" for what, nodes in problems.items())


def fleet_targets(profile: Targets, facts: Iterable[NodeFacts], matrix: Matrix) -> Targets:
    """The solver's targets for serving every node in ``facts`` with one stack."""
    nodes = list(facts)
    platforms = tuple(dict.fromkeys(ARCHES[f.arch] for f in nodes if f.arch in ARCHES))
    gpu_nodes = [f for f in nodes if f.gpus]
    gpus = tuple(dict.fromkeys(f"cc:{cc}" for f in gpu_nodes for cc in ccs_of(f, matrix)))
    gpu_platforms = tuple(dict.fromkeys(ARCHES[f.arch] for f in gpu_nodes if f.arch in ARCHES))
    drivers = [v for f in gpu_nodes if (v := _version(f.driver)) is not None]
    glibcs = [v for f in nodes if (v := _version(f.glibc)) is not None]
    vendors = {VENDORS.get(f.cpu_vendor or "", "any") for f in nodes}
    return replace(
        profile,
        platforms=platforms or profile.platforms,
        gpus=gpus,
        gpu_platforms=None if set(gpu_platforms) == set(platforms) else gpu_platforms,
        driver=min(drivers) if drivers else None,
        cpu_vendor=vendors.pop() if len(vendors) == 1 else "any",
        glibc=min(glibcs) if glibcs else profile.glibc,
    )


def conflicts(profile: Targets, facts: Mapping[str, NodeFacts], matrix: Matrix) -> tuple[str, ...]:
    """Where the profile's targets and the nodes disagree, one sentence per difference."""
    out: list[str] = []

    def differ(what: str, by: Mapping[str, list[str]], fix: str) -> None:
        for value, nodes in by.items():
            out.append(f"the profile says {what}, nodes {compress(nodes)} have {value}: {fix}")

    if profile.driver is not None:
        lower: dict[str, list[str]] = {}
        for name, f in facts.items():
            v = _version(f.driver)
            if f.gpus and v is not None and v < profile.driver:
                lower.setdefault(f"driver {f.driver}", []).append(name)
        differ(f"driver {profile.driver}", lower, "lower targets.driver or upgrade their driver")

    arches = {a for a, p in ARCHES.items() if p in profile.platforms and a in ("x86_64", "aarch64")}
    other: dict[str, list[str]] = {}
    for name, f in facts.items():
        if f.arch in ARCHES and ARCHES[f.arch] not in profile.platforms:
            other.setdefault(f"arch {f.arch}", []).append(name)
    differ(f"arch {', '.join(sorted(arches))}", other, "add their arch to targets.arch")

    if profile.glibc is not None:
        older: dict[str, list[str]] = {}
        for name, f in facts.items():
            v = _version(f.glibc)
            if v is not None and v < profile.glibc:
                older.setdefault(f"glibc {f.glibc}", []).append(name)
        differ(f"glibc {profile.glibc}", older, "lower targets.glibc (the image must run there)")

    if profile.cpu_vendor != "any":
        vendor: dict[str, list[str]] = {}
        for name, f in facts.items():
            if VENDORS.get(f.cpu_vendor or "") != profile.cpu_vendor and f.arch in ("x86_64", "amd64"):
                vendor.setdefault(f"CPU vendor {f.cpu_vendor or 'unknown'}", []).append(name)
        differ(f"cpu_vendor {profile.cpu_vendor}", vendor, "set targets.cpu_vendor to 'any'")

    if profile.gpus:
        named = {cc for cc in (_gpu(matrix, n) for n in profile.gpus) if cc is not None}
        unnamed: dict[str, list[str]] = {}
        for name, f in facts.items():
            for gpu in f.gpus:
                cc = gpu.cc or (_cc(g.cc) if (g := matrix.find_gpu(gpu.name)) else None)
                if cc is not None and cc not in named:
                    unnamed.setdefault(f"{gpu.name} (CC {cc})", []).append(name)
        listed = ", ".join(profile.gpus)
        differ(f"GPUs {listed}", unnamed, "add them to targets.gpus (or leave targets.gpus out)")
    return tuple(dict.fromkeys(out))


def _gpu(matrix: Matrix, name: str) -> str | None:
    """A profile GPU entry (name, ``cc:9.0`` or ``sm_90``) as its compute capability ``"9.0"``."""
    text = name.strip().lower()
    if text.startswith("cc:"):
        return _cc(_version(text[3:]))
    if text.startswith("sm_") and text[3:].isdigit() and len(text) > 4:
        return _cc(_version(f"{text[3:-1]}.{text[-1]}"))
    gpu = matrix.find_gpu(name)
    return _cc(gpu.cc) if gpu is not None else None


def _cc(v: Version | None) -> str | None:
    return None if v is None else f"{v.major}.{v.minor}"


def _version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None
