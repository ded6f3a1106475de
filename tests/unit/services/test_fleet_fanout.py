"""``push --fleet --fanout``: each variant's push picks its own fan-out (as a single-image push
would, from its own nodes) and runs with its own stager; the report says per variant which ran."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_local import LocalPool
from nd_oci import app_layers, write_layout

from envctl.adapters.oci_layout import OciImage, read_image
from envctl.core.delivery import Delivered
from envctl.core.fanout_mode import RelayTuning
from envctl.core.node import NodeSpec
from envctl.services.deliver.fleet_push import push_fleet
from envctl.services.deliver.nodeclient import NodeClient
from envctl.services.deliver.push import DirectStager, Held, PushOptions, PushReporter
from envctl.services.deliver.registry_stage import RegistryStager
from envctl.services.deliver.relay_stage import RelayStager
from envctl.services.deliver.stagers import pick_stager


def spec(tmp_path: Path, name: str, **kw: Any) -> NodeSpec:
    return NodeSpec(
        name,
        "127.0.0.1",
        runtime="prefix",
        store=str(tmp_path / name / "store"),
        prefix_root=str(tmp_path / name / "envs"),
        **kw,
    )  # type: ignore[arg-type]


def test_each_variant_chooses_from_its_own_nodes(tmp_path: Path) -> None:
    small = [spec(tmp_path, f"a{i}") for i in range(2)]
    large = [spec(tmp_path, f"b{i}") for i in range(6)]
    named = [spec(tmp_path, f"c{i}", registry="registry://reg.example:5000/envs") for i in range(2)]
    tuning = RelayTuning(fanout=3, seeds=2)
    choice, stager = pick_stager("auto", small, None, relay=tuning)
    assert choice.mode == "direct" and isinstance(stager, DirectStager)
    choice, stager = pick_stager("auto", large, None, relay=tuning)
    assert choice.mode == "relay" and "6 nodes" in choice.why
    assert isinstance(stager, RelayStager) and (stager.fanout, stager.seeds) == (3, 2)
    choice, stager = pick_stager("auto", named, None)
    assert choice.mode == "registry" and isinstance(stager, RegistryStager)
    assert stager.target.host == "reg.example:5000"
    # one stager per push: two variants relaying never share one (it holds a push's tree)
    assert pick_stager("relay", large, None)[1] is not pick_stager("relay", large, None)[1]


@dataclass
class Recording:
    """A direct stager under another name that records the nodes it was given."""

    name: str
    surveys: bool = False
    nodes: list[str] = field(default_factory=list)

    def begin(
        self,
        image: OciImage,
        nodes: Sequence[NodeSpec],
        survey: Mapping[str, Held] | None = None,
    ) -> None:
        self.nodes = [n.name for n in nodes]

    def stage(self, client: NodeClient, image: OciImage, reporter: PushReporter) -> Delivered:
        return DirectStager().stage(client, image, reporter)

    def end(self) -> dict[str, Any]:
        return {"seen": list(self.nodes)}

    def parallel(self, requested: int, count: int) -> int:
        return requested


def test_each_variant_pushes_with_its_own_stager_and_reports_it(tmp_path: Path) -> None:
    write_layout(tmp_path / "img", app_layers("1", 0))
    img = read_image(tmp_path / "img")
    groups = {"va": [spec(tmp_path, "a1")], "vb": [spec(tmp_path, "b1"), spec(tmp_path, "b2")]}
    ways = {"va": (Recording("one"), "why one"), "vb": (Recording("two"), "why two")}
    opts = PushOptions(env="demo", lock_timeout=20, idle_timeout=5)
    reports = push_fleet({"va": img, "vb": img}, groups, LocalPool(), opts, stagers=ways)
    assert all(r.exit_code == 0 for r in reports.values())
    va, vb = reports["va"].as_json()["fanout"], reports["vb"].as_json()["fanout"]
    assert (va["mode"], va["why"], va["seen"]) == ("one", "why one", ["a1"])
    assert (vb["mode"], vb["why"], vb["seen"]) == ("two", "why two", ["b1", "b2"])
    # without stagers, every variant takes the options' (direct, as before)
    again = push_fleet({"va": img, "vb": img}, groups, LocalPool(), opts)
    assert {r.as_json()["fanout"]["mode"] for r in again.values()} == {"direct"}
