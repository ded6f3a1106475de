import io
import sys

import pytest

from envctl.adapters.local import LocalTransport
from envctl.core.transport import Transport
from envctl.errors import RemoteError, TransportError


def test_run_passes_argv_verbatim_and_stdin() -> None:
    t: Transport = LocalTransport("n0")
    args = ["a b", "'q'", '"dq"', "; rm -rf /", "$(id)"]
    result = t.run([sys.executable, "-c", "import sys; print(sys.argv[1:])", *args])
    assert result.stdout.decode().strip() == repr(args)
    assert t.run(["cat"], stdin=b"hello").stdout == b"hello"


def test_non_zero_exit_raises_remote_error_naming_node_command_and_stderr() -> None:
    t = LocalTransport("n7")
    with pytest.raises(RemoteError) as err:
        t.run(["sh", "-c", "echo first >&2; echo 'disk full' >&2; exit 3"])
    message = err.value.message
    assert message.startswith("n7: ") and "exited with 3: disk full" in message and "sh -c" in message
    assert t.run(["false"], check=False).exit_code == 1


def test_upload_streams_exact_size_with_progress() -> None:
    t = LocalTransport("n1")
    data = bytes(range(256)) * 5000
    seen: list[int] = []
    result = t.upload(["wc", "-c"], io.BytesIO(data + b"extra"), size=len(data), progress=seen.append)
    assert int(result.stdout) == len(data)
    assert seen[-1] == len(data) and seen == sorted(seen)


def test_upload_short_source_and_missing_program() -> None:
    t = LocalTransport("n1")
    with pytest.raises(TransportError, match="source ended after 3 of 10 bytes"):
        t.upload(["cat"], io.BytesIO(b"abc"), size=10)
    with pytest.raises(TransportError, match="n1: cannot run"):
        t.run(["/nonexistent/prog"])
