"""Orchestration between the CLI and the pure core."""
