"""push / status / rollback on bad input: one error (JSON with --json), exit 2, nothing sent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import cli

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import app_layers, write_layout


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "st"))


def test_push_with_a_missing_inventory_reports_json(tmp_path: Path) -> None:
    write_layout(tmp_path / "img", app_layers("1"))
    out = CliRunner().invoke(cli, ["push", str(tmp_path / "img"), "-i", str(tmp_path / "no.toml"), "--json"])
    assert out.exit_code == 2
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and "no.toml" in doc["error"]


def test_push_of_something_that_is_not_an_image(tmp_path: Path) -> None:
    inv = tmp_path / "inv.toml"
    inv.write_text('[nodes.n1]\nhost = "127.0.0.1"\n')
    out = CliRunner().invoke(cli, ["push", str(tmp_path), "-i", str(inv), "--json"])
    assert out.exit_code == 2 and "not an OCI image layout" in json.loads(out.stdout)["error"]


def test_bad_env_name_and_max_fail(tmp_path: Path) -> None:
    write_layout(tmp_path / "img", app_layers("1"))
    inv = tmp_path / "inv.toml"
    inv.write_text('[nodes.n1]\nhost = "127.0.0.1"\n')
    args = ["push", str(tmp_path / "img"), "-i", str(inv), "--json"]
    out = CliRunner().invoke(cli, [*args, "--env", "../etc"])
    assert out.exit_code == 2 and "not allowed" in json.loads(out.stdout)["error"]
    out = CliRunner().invoke(cli, [*args, "--max-fail", "lots"])
    assert out.exit_code == 2 and "--max-fail" in json.loads(out.stdout)["error"]
    out = CliRunner().invoke(cli, ["rollback", "Bad/Name", "-i", str(inv), "--json"])
    assert out.exit_code == 2


def test_the_delivery_table_shows_every_kind_of_node_entry(capsys: pytest.CaptureFixture[str]) -> None:
    from envctl.cli.nodes_common import render_delivery
    from envctl.cli.output import NotOk
    from envctl.core.delivery import Delivered, DeliveryReport, NotDelivered
    from envctl.core.group import GroupResult
    from envctl.errors import TransportError

    nodes = GroupResult(
        {
            "n1": Delivered("ok", "sha256:" + "a" * 64, previous="sha256:" + "b" * 64, bytes_sent=2_500_000),
            "n2": NotDelivered("not activated: another node failed (--atomic)", status="skipped"),
            "n3": TransportError("n3", "connection refused"),
        }
    )
    with pytest.raises(NotOk) as exit_:  # printed, and not ok: main exits 1
        render_delivery(DeliveryReport("push", "demo", "sha256:" + "a" * 64, nodes), as_json=False)
    assert exit_.value.exit_code == 1
    out = capsys.readouterr().out
    assert "2.5 MB" in out and "sha256:bbbbbbbbbbbb" in out and "skipped" in out
    assert "n3: connection refused" in out and "outcome: partial" in out


def test_registry_ca_and_registry_auth_bad_input_is_exit_2_before_any_node(tmp_path: Path) -> None:
    write_layout(tmp_path / "img", app_layers("1"))
    inv = tmp_path / "inv.toml"
    inv.write_text('[nodes.n1]\nhost = "127.0.0.1"\n')
    args = ["push", str(tmp_path / "img"), "-i", str(inv), "--json", "--via", "registry://r.example/envs"]
    out = CliRunner().invoke(cli, [*args, "--registry-ca", str(tmp_path / "absent.pem")])
    assert out.exit_code == 2 and "absent.pem" in json.loads(out.stdout)["error"], out.stdout
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    out = CliRunner().invoke(cli, [*args, "--registry-ca", str(junk)])
    doc = json.loads(out.stdout)
    assert out.exit_code == 2 and doc["error"] == f"--registry-ca: {junk}: not PEM certificates", doc
    out = CliRunner().invoke(cli, [*args, "--registry-auth", "everyone"])
    assert out.exit_code == 2 and "--registry-auth" in json.loads(out.stdout)["error"]
    direct = ["push", str(tmp_path / "img"), "-i", str(inv), "--json", "--fanout", "direct"]
    out = CliRunner().invoke(cli, [*direct, "--registry-auth", "node"])
    assert out.exit_code == 2 and "apply to --fanout registry" in json.loads(out.stdout)["error"]
    # the inventory's registry_ca: a path on this machine, relative to the inventory's folder
    inv.write_text('[defaults]\nregistry = "registry://r.example/envs"\nregistry_ca = "junk.pem"\n'
                   '[nodes.n1]\nhost = "127.0.0.1"\n')  # fmt: skip
    out = CliRunner().invoke(cli, ["push", str(tmp_path / "img"), "-i", str(inv), "--json"])
    doc = json.loads(out.stdout)
    assert out.exit_code == 2 and doc["error"] == f"{inv}: registry_ca: {junk}: not PEM certificates", doc
