"""Prepare nodes for envctl: render the bootstrap script, run it over SSH."""
