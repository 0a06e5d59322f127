"""The migrations are found however the code is installed or run (issue 13, item 12).

``migrations/`` sits at the top of the repository and ships in the wheel as ``orchestrator.migrations``.
Running from a checkout (``python -m orchestrator``, ``python -m bench.…``) imports the checkout's
``orchestrator`` package, which has no such subpackage, even when a regular ``pip install .`` put one
in site-packages; only an editable install used to hide that.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_checkout_migrates_a_database_without_the_editable_install(tmp_path: Path) -> None:
    """``-S``: no site, so no editable-install finder; the dependencies come from site-packages as plain paths."""
    database = tmp_path / "o.db"
    program = (
        "import runpy, sys\n"
        f"sys.path[:0] = [{str(REPO)!r}, {sysconfig.get_paths()['purelib']!r}]\n"
        f"sys.argv = ['orchestrator', 'db', 'upgrade', '--database', {str(database)!r}]\n"
        "runpy.run_module('orchestrator', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-S", "-c", program], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{database}: schema up to date"


def test_a_regular_build_ships_every_migration_inside_the_package(tmp_path: Path) -> None:
    """``env.py``, the template and every revision land under ``orchestrator/migrations`` in the build.

    ``build_py`` is the step of a wheel build that lays out the packages (the wheel's files are its
    output plus metadata); it runs on a copy of the tracked files, as a clean clone would have them.
    """
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((REPO / name).read_bytes())
    build = tmp_path / "build"
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)], cwd=source,
                   check=True, capture_output=True, timeout=120)

    shipped = {path.relative_to(build).as_posix() for path in build.rglob("*") if path.is_file()}

    versions = (REPO / "migrations" / "versions").glob("*.py")
    revisions = {f"orchestrator/migrations/versions/{path.name}" for path in versions}
    assert {"orchestrator/migrations/env.py", "orchestrator/migrations/script.py.mako"} | revisions <= shipped
    assert not any(name.startswith("migrations/") for name in shipped)
