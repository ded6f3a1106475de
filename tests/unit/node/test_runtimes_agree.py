"""The node agent's runtime list is a copy of the core's; they must not drift apart.

Why a copy: the agent (envctl/node) runs on the nodes with the standard library alone and travels
as a zip of envctl/node only, so it may not import envctl.core (test_layers enforces that).
"""

from __future__ import annotations

from envctl.core.node import DEFAULT_RUNTIME, RUNTIMES
from envctl.node import agent, runtimes


def test_the_agent_knows_exactly_the_core_runtimes() -> None:
    assert runtimes.RUNTIMES == RUNTIMES
    (action,) = [a for a in agent.parser()._actions if a.dest == "runtime"]
    assert tuple(action.choices or ()) == RUNTIMES
    assert action.default == DEFAULT_RUNTIME


def test_every_runtime_is_accepted_by_the_agent_and_others_are_refused() -> None:
    import pytest

    for runtime in RUNTIMES:
        args = agent.parser().parse_args(["--store", "/s", "--runtime", runtime, "have"])
        assert args.runtime == runtime
    from envctl.node.checks import AgentError

    # a bad command line is the agent's JSON error (kind input), not argparse's usage and exit 2
    with pytest.raises(AgentError, match="invalid choice: 'lxc'"):
        agent.parser().parse_args(["--store", "/s", "--runtime", "lxc", "have"])
