"""envctl: solve, lock, build and deliver consistent ML environments to GPU clusters."""

__version__ = "0.1.0"
