"""``python -m orchestrator`` is the same as the ``orchestrator`` console script."""

from orchestrator.cli import main

raise SystemExit(main())
