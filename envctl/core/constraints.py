"""The problem the solver works on: the profile's requirements as named, relaxable constraints.

Explanations need to say *which* requirements conflict, so every requirement has an id
("frameworks.torch", "targets.driver", "targets.gpus.K80", ...) and can be switched off.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envctl.core.matrix import Gpu, Matrix, Spec
from envctl.core.profile import DEFAULT_GLIBC, FrameworkRequest, Profile
from envctl.errors import InputError

#: what a relaxed range allows (one object, so that its answers are remembered)
ANY = Spec()


@dataclass(frozen=True)
class Requirement:
    id: str  # stable key, also the profile key path
    text: str  # how to show it: "torch >=2.11", "driver 535.104.05"


@dataclass(frozen=True)
class Problem:
    """A profile resolved against the matrix, with the set of requirements still in force."""

    profile: Profile
    gpus: tuple[Gpu, ...]
    active: frozenset[str]

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return all_requirements(self.profile, self.gpus)

    def on(self, req_id: str) -> bool:
        return req_id in self.active

    def without(self, *req_ids: str) -> Problem:
        return replace(self, active=self.active - set(req_ids))

    def extras(self, framework: str) -> tuple[str, ...]:
        # Relaxing ``frameworks.jax[cuda13].extras`` lets any CUDA build do (jax[cuda12] too).
        fw = next((f for f in self.profile.frameworks if f.name == framework), None)
        return fw.extras if fw is not None and self.on(f"{fw.key}.extras") else ()

    def python(self) -> SpecifierSet:
        return self.profile.python if self.on("environment.python") else ANY

    def spec(self, fw: FrameworkRequest) -> SpecifierSet:
        return fw.spec if self.on(fw.key) else ANY

    def platforms(self) -> tuple[str, ...]:
        platforms = self.profile.targets.platforms
        if len(platforms) == 1:  # a lone platform is not relaxable: dropping it leaves nothing
            return platforms
        return tuple(p for p in platforms if self.on(f"targets.arch.{p}"))

    def active_gpus(self) -> tuple[Gpu, ...]:
        return tuple(g for g in self.gpus if self.on(f"targets.gpus.{g.name}"))

    def gpu_platform(self, platform: str) -> bool:
        # Relaxing one GPU means "any GPU will do", never "no GPU": a GPU platform stays one
        # unless its own requirement (targets.gpu_arch.<platform>) is relaxed.
        return (
            bool(self.gpus)
            and self.profile.targets.has_gpus_on(platform)
            and self.on(f"targets.gpu_arch.{platform}")
        )

    def driver(self) -> Version | None:
        return self.profile.targets.driver if self.on("targets.driver") else None

    def glibc(self) -> Version | None:
        return self.profile.targets.glibc if self.on("targets.glibc") else None

    def glibc_or_default(self) -> Version:
        return self.glibc() or DEFAULT_GLIBC

    def blas(self) -> str:
        return self.profile.blas if self.on("blas.prefer") else "auto"

    def forward_compat(self) -> bool:
        # Not a requirement but a permission: relaxing means *allowing* it (a way out).
        return self.profile.targets.forward_compat or not self.on("targets.forward_compat")


def all_requirements(profile: Profile, gpus: tuple[Gpu, ...]) -> tuple[Requirement, ...]:
    """Every requirement of the profile, in the order explanations try to drop them: GPU presence
    first, so that "make it CPU-only" is blamed only when nothing narrower explains a conflict."""
    t = profile.targets
    reqs = [
        Requirement(f"targets.gpu_arch.{p}", f"GPUs on {p}") for p in t.platforms if gpus and t.has_gpus_on(p)
    ]
    if str(profile.python):
        reqs.append(Requirement("environment.python", f"Python {profile.python}"))
    for fw in profile.frameworks:
        reqs.append(Requirement(fw.key, f"{fw.name} {fw.spec or '(any)'}"))
        if fw.extras:
            reqs.append(Requirement(f"{fw.key}.extras", f"{fw.name}[{','.join(fw.extras)}] (extra)"))
    if len(t.platforms) > 1:
        reqs += [Requirement(f"targets.arch.{p}", f"platform {p}") for p in t.platforms]
    reqs += [Requirement(f"targets.gpus.{g.name}", f"GPU {g.name} (CC {g.cc})") for g in gpus]
    if t.driver is not None:
        reqs.append(Requirement("targets.driver", f"driver {t.driver}"))
    if t.glibc is not None:
        reqs.append(Requirement("targets.glibc", f"glibc {t.glibc}"))
    if profile.blas != "auto":
        reqs.append(Requirement("blas.prefer", f"BLAS {profile.blas}"))
    if not t.forward_compat:
        reqs.append(Requirement("targets.forward_compat", "no forward compatibility"))
    return tuple(reqs)


def make_problem(profile: Profile, matrix: Matrix) -> Problem:
    """Resolve GPU names and check that every named version exists. Bad input -> InputError."""
    gpus = tuple(resolve_gpu(name, matrix, profile.path) for name in profile.targets.gpus)
    gpus = tuple({g.name: g for g in gpus}.values())
    for fw in profile.frameworks:
        framework = matrix.framework(fw.name)
        if framework is None:
            raise InputError(f"{profile.path}: {fw.key}: the matrix knows no framework {fw.name!r}")
        known = framework.versions()
        if not any(v in fw.spec for v in known):
            raise InputError(
                f"{profile.path}: {fw.key}: no known {fw.name} release matches {str(fw.spec)!r}",
                hint=f"known releases: {known[-1]} to {known[0]}; newer ones: envctl matrix refresh",
            )
    if str(profile.python) and not any(v in profile.python for v in matrix.python_versions):
        raise InputError(
            f"{profile.path}: environment.python: no Python release matches {str(profile.python)!r}",
            hint=f"known: {', '.join(str(v) for v in matrix.python_versions)}",
        )
    problem = Problem(profile, gpus, frozenset())
    return replace(problem, active=frozenset(r.id for r in problem.requirements))


def resolve_gpu(name: str, matrix: Matrix, where: str = "--gpu") -> Gpu:
    """A GPU by name, nvidia-smi name, or raw compute capability ("cc:9.0", "sm_90")."""
    raw = name.strip().lower()
    cc_text = None
    if raw.startswith("cc:"):
        cc_text = raw[3:]
    elif raw.startswith("sm_") and raw[3:].isdigit() and len(raw) >= 5:
        cc_text = f"{raw[3:-1]}.{raw[-1]}"
    if cc_text is not None:
        try:
            cc = Version(cc_text)
        except ValueError:
            cc = None
        if cc is None or matrix.cc_info(cc) is None:
            raise InputError(
                f"{where}: targets.gpus: unknown compute capability {name!r}",
                hint="known: " + ", ".join(str(c.cc) for c in matrix.ccs),
            )
        datacenter = False  # unknown model: forward compatibility cannot be assumed
        return Gpu(f"sm_{cc.major}{cc.minor}", (), cc, datacenter, "compute capability given directly")
    gpu = matrix.find_gpu(name)
    if gpu is None:
        names = [g.name for g in matrix.gpus] + [a for g in matrix.gpus for a in g.aliases]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "give a compute capability: cc:9.0"
        raise InputError(f"{where}: targets.gpus: unknown GPU {name!r}", hint=hint)
    return gpu
