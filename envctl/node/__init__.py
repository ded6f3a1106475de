"""The node side of envctl: the agent that push, status and rollback run on each node."""
