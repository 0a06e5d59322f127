"""``python -m orchestrator.emulator``: the same as ``orchestrator emulator``."""

import sys

from orchestrator.emulator.cli import main

sys.exit(main())
