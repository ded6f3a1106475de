"""``make_stager`` builds the relay for ``--fanout relay``, and a relay stages every node at once."""

from __future__ import annotations

from envctl.core.fanout_mode import FanoutChoice
from envctl.services.deliver.relay_stage import RelayStager, _HeldOpen
from envctl.services.deliver.stagers import make_stager


def test_relay_mode_makes_a_relay_stager_encrypted_unless_asked() -> None:
    stager = make_stager(FanoutChoice("relay", "asked for"), None)
    assert isinstance(stager, RelayStager) and stager.plaintext is False
    plain = make_stager(FanoutChoice("relay", "asked for"), None, relay_plaintext=True)
    assert isinstance(plain, RelayStager) and plain.plaintext is True


def test_every_node_stages_at_once() -> None:
    assert RelayStager().parallel(8, 40) == 40 and RelayStager().parallel(8, 3) == 8


def test_the_serve_stdin_holds_until_stop() -> None:
    import threading

    stop = threading.Event()
    held = _HeldOpen(b'{"a": 1}\n', stop)
    assert held.read(held.size) == b'{"a": 1}\n'
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(held.read(10)))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and got == []  # blocks while the push runs
    stop.set()
    reader.join(5)
    assert got == [b"stop\n"] and held.read(10) == b""


def test_the_agent_command_line_never_carries_the_test_hook() -> None:
    from envctl.core.node import NodeSpec
    from envctl.node.relay import TEST_CORRUPT_ENV
    from envctl.services.deliver.nodeclient import NodeClient

    client = NodeClient(None, NodeSpec(name="n1", host="10.0.0.1"))  # type: ignore[arg-type]
    for command in ("serve", "fetch"):
        assert not any(TEST_CORRUPT_ENV in word for word in client._argv(command, (), None))


def test_end_before_begin_reports_nothing() -> None:
    assert RelayStager().end() == {}
