"""Adapters at the edges: network, subprocesses, engines."""
