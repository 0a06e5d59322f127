"""``python -m orchestrator`` and the ``orchestrator`` console script.

For ``run``, SIGTERM/SIGINT are caught before the command-line module and the daemon are imported
(about half a second), so that a stop during start-up is a clean exit 0 (:mod:`orchestrator.stop_signals`).
"""

import sys

from orchestrator import stop_signals


def main() -> int:
    """Entry point of the console script."""
    if sys.argv[1:2] == ["run"]:
        stop_signals.catch_early()
    from orchestrator.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
