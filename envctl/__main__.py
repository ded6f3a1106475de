import sys

from envctl.cli import main

sys.exit(main())
