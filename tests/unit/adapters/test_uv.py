"""Unit tests of uv output parsing and error translation (no subprocess)."""

from __future__ import annotations

from envctl.adapters.files import tomllib
from envctl.adapters.uv import _options, _pyproject, parse_requirements, uv_error
from envctl.core.resolvers import PipRequest
from envctl.core.solution import IndexPin

REQUIREMENTS = """\
filelock==3.16.1 \\
    --hash=sha256:2082e5703d51fbf98ea75855d9d5527e33d8ff23099bec374a134febee6946b0
    # via
    #   torch
    #   triton
    # from https://pypi.org/simple
nvidia-cudnn-cu12==9.1.0.70 ; platform_machine == 'x86_64' and sys_platform == 'linux' \\
    --hash=sha256:165764f44ef8c61fcdfdfdbe769d687e06374059fbb388b6c89ecb0e28793a6f
    # via torch
    # from https://pypi.org/simple
torch==2.5.1+cu121 \\
    --hash=sha256:0f43166397571fdae005fb79897a87e8b1dff2c8956156e67a86adbc0c1f493e
    # via envctl-lock-root (pyproject.toml)
    # from https://download.pytorch.org/whl/cu121
Jinja2==3.1.5 \\
    --hash=sha256:aba0f4dc9ed8013c424088f68a5c226f7d6097ed89b246d7749c2ec4175c6adb
    # via torch
"""

REQUEST = PipRequest(("torch==2.5.1",), "3.12", "x86_64-manylinux_2_17", label="linux-64")


def test_parse_requirements_edges_and_indexes() -> None:
    parsed = parse_requirements(REQUIREMENTS)
    assert parsed["filelock"] == (["torch", "triton"], "https://pypi.org/simple")
    assert parsed["nvidia-cudnn-cu12"] == (["torch"], "https://pypi.org/simple")
    assert parsed["torch"] == (["envctl-lock-root"], "https://download.pytorch.org/whl/cu121")
    assert parsed["jinja2"] == (["torch"], None)  # names are normalised


def test_unknown_package_error() -> None:
    stderr = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because torchh was not found in the package registry and envctl-lock-root "
        "depends on torchh==2.5.1, we can conclude that your requirements are unsatisfiable.\n"
    )
    error = uv_error(stderr, REQUEST)
    assert error.message == "unknown package torchh for linux-64: not found in the package index"
    assert error.exit_code == 1 and error.hint


def test_unsatisfiable_error_keeps_uv_hint() -> None:
    stderr = (
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because there is no version of torch==9.9.9 and envctl-lock-root depends on\n"
        "      torch==9.9.9, we can conclude that your requirements are unsatisfiable.\n"
        "hint: `torch` was filtered by `exclude-newer`\n"
    )
    error = uv_error(stderr, REQUEST)
    assert error.message == "unsatisfiable for linux-64: no version of torch==9.9.9 fits"
    assert error.hint == "`torch` was filtered by `exclude-newer`"


def test_unreachable_index_error() -> None:
    stderr = (
        "error: Failed to fetch: `http://127.0.0.1:9/simple/torch/`\n"
        "  Caused by: Request failed after 3 retries\n"
        "  Caused by: tcp connect error: Connection refused (os error 111)\n"
    )
    error = uv_error(stderr, REQUEST)
    assert error.message == (
        "cannot reach index http://127.0.0.1:9/simple/torch/ for linux-64: connection refused"
    )


def test_unknown_error_is_still_one_line() -> None:
    error = uv_error("error: something\nnew\n  cause: went\n   wrong\n", REQUEST)
    assert "\n" not in error.message and error.message.startswith("uv could not resolve")


def test_options_pin_indexes_and_offline() -> None:
    pin = IndexPin("torch", "https://download.pytorch.org/whl/cu121", "cu121")
    online = _options(PipRequest(("torch",), "3.12", "x", exclude_newer="T", pins=(pin,)))
    assert online[online.index("--exclude-newer") :][:2] == ["--exclude-newer", "T"]
    assert "torch=false" in online  # static framework indexes have no upload dates
    offline = _options(
        PipRequest(("torch",), "3.12", "x", exclude_newer="T", offline=True, find_links=("/w",))
    )
    assert {"--offline", "--no-index", "--no-sources"} <= set(offline)
    assert "--exclude-newer" not in offline and offline[-2:] == ["--find-links", "/w"]


def test_project_file_reads_back_with_pins_and_any_text() -> None:
    request = PipRequest(
        ("torch==2.5.1", 'name ; extra == "é🎉"'),
        "3.12",
        "x86_64-manylinux_2_17",
        pins=(IndexPin("torch", "https://download.pytorch.org/whl/cu121"),),
    )
    document = tomllib.loads(_pyproject(request))
    assert document["project"]["dependencies"] == list(request.requirements)
    assert document["tool"]["uv"]["sources"] == {"torch": {"index": "envctl-pin-0"}}
    assert document["tool"]["uv"]["index"] == [
        {"name": "envctl-pin-0", "url": "https://download.pytorch.org/whl/cu121", "explicit": True}
    ]
