"""``python -m envctl``: the same entry point as the console script."""

from envctl.cli import main

main()
