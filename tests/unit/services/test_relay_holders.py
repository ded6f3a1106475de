"""Nodes that already hold the image root the relay tree: push surveys them (the real agent's
``have`` on temp-directory 'nodes') for a stager that asks, and the relay stager plans from it."""

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
from envctl.core.node import NodeSpec
from envctl.services.deliver.nodeclient import NodeClient
from envctl.services.deliver.push import DirectStager, Held, PushOptions, PushReporter, holders_of, push
from envctl.services.deliver.relay_stage import RelayStager


def image(tmp_path: Path, version: str) -> OciImage:
    write_layout(tmp_path / f"img-{version}", app_layers(version, 0))
    return read_image(tmp_path / f"img-{version}")


def nodes(tmp_path: Path, *names: str) -> list[NodeSpec]:
    return [
        NodeSpec(
            n,
            "127.0.0.1",
            runtime="prefix",
            store=str(tmp_path / n / "store"),
            prefix_root=str(tmp_path / n / "envs"),
        )  # type: ignore[arg-type]
        for n in names
    ]


@dataclass
class Surveying:
    """A direct stager that asks for the survey and records what ``begin`` was told."""

    name: str = "direct"
    surveys: bool = True
    told: list[frozenset[str]] = field(default_factory=list)

    def begin(
        self,
        image: OciImage,
        nodes: Sequence[NodeSpec],
        survey: Mapping[str, Held] | None = None,
    ) -> None:
        self.told.append(holders_of(image, survey))

    def stage(self, client: NodeClient, image: OciImage, reporter: PushReporter) -> Delivered:
        return DirectStager().stage(client, image, reporter)

    def end(self) -> dict[str, Any]:
        return {}

    def parallel(self, requested: int, count: int) -> int:
        return requested


def test_push_tells_a_surveying_stager_which_nodes_hold_every_blob(tmp_path: Path) -> None:
    v1, v2 = image(tmp_path, "1"), image(tmp_path, "2")
    old, new = nodes(tmp_path, "a1", "a2"), nodes(tmp_path, "b1")
    opts = PushOptions(env="demo", lock_timeout=20, idle_timeout=5)
    assert push(v1, old, LocalPool(), opts).exit_code == 0
    stager = Surveying()
    again = push(v1, [*old, *new], LocalPool(), PushOptions(env="demo", lock_timeout=20, stager=stager))
    assert again.exit_code == 0 and stager.told == [frozenset({"a1", "a2"})]
    # an image whose blobs they lack only in part: nobody holds it
    push(v2, [*old, *new], LocalPool(), PushOptions(env="demo", lock_timeout=20, stager=stager))
    assert stager.told[-1] == frozenset()


def test_a_stager_that_does_not_survey_costs_no_extra_call(tmp_path: Path) -> None:
    from nd_local import LocalTransport

    seen: list[LocalTransport] = []

    def dial(node: NodeSpec) -> LocalTransport:
        seen.append(LocalTransport(node.name))
        return seen[-1]

    push(image(tmp_path, "1"), nodes(tmp_path, "a1"), LocalPool(dial), PushOptions(env="demo"))
    haves = [argv for argv in seen[0].calls if "have" in argv]
    assert len(haves) == 1  # the stage's own


def test_the_relay_roots_its_tree_at_the_holders_and_reports_them(tmp_path: Path) -> None:
    img = image(tmp_path, "1")
    specs = nodes(tmp_path, "a1", "a2", "b1", "b2", "b3")
    stager = RelayStager(fanout=3, seeds=2)
    assert stager.surveys
    stager.begin(img, specs, {"a2": ({b.digest for b in img.blobs}, {})})
    assert stager.plan.seeds() == [] and stager.plan.children("a2") == ["a1", "b1", "b2"]
    assert set(stager.creds) == {"a2", "a1"}  # the relays: the holder and the node it feeds first
    report = stager.end()
    assert report["holders"] == ["a2"] and report["relay_fanout"] == 3 and report["relay_seeds"] == 2
    assert report["tree"]["a2"] is None and report["tree"]["b3"] == "a1"
