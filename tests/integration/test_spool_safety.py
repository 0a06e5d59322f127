"""The spool cannot be turned against the daemon: links refused, modes tightened, the inbox watched alone.

A security review replaced ``spool/processing`` with a symbolic link to the database folder before a
restart; the daemon then took its own live database and lock file for job files and moved them into
``rejected/``. These tests build that spool for real (real links, real modes) and start the real daemon.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from orchestrator.clock import SystemClock
from orchestrator.config import Settings, SpoolSettings
from orchestrator.daemon import DaemonAlreadyRunning, daemon_lock, run_daemon
from orchestrator.intake import Intake, UnsafeSpool, secure_spool
from orchestrator.store.sql import SqlStore
from tests.conftest import wait_until
from tests.integration.test_intake import store

__all__ = ["store"]  # the fixture: a real database under tmp_path


@pytest.mark.parametrize("folder", ["processing", "inbox", "accepted", "rejected"])
async def test_a_symlinked_spool_folder_stops_the_start_and_moves_nothing(
    folder: str, settings: Settings, tmp_path: Path
) -> None:
    database_folder = settings.database.path.parent
    database_folder.mkdir(parents=True, exist_ok=True)
    settings.database.path.write_bytes(b"")  # the live database the link points at
    spool = settings.spool.path
    spool.mkdir(parents=True, exist_ok=True)
    (spool / folder).symlink_to(database_folder)
    before = sorted(os.listdir(database_folder))

    with pytest.raises(UnsafeSpool) as refused:
        await asyncio.wait_for(run_daemon(settings, asyncio.Event()), 30)

    assert f"spool folder {spool / folder} is a symbolic link" in str(refused.value)
    assert set(before) <= set(os.listdir(database_folder))  # the database stays where it is
    assert settings.database.path.exists()
    assert (spool / folder).is_symlink()


def test_a_symlinked_spool_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "spool").symlink_to(tmp_path / "real")

    with pytest.raises(UnsafeSpool, match="is a symbolic link"):
        secure_spool(tmp_path / "spool")


def test_a_file_where_a_spool_folder_belongs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "accepted").write_text("not a folder")

    with pytest.raises(UnsafeSpool, match="accepted is not a folder"):
        secure_spool(tmp_path / "spool")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user takes root")
def test_a_spool_folder_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "spool" / "rejected").mkdir(parents=True)
    os.chown(tmp_path / "spool" / "rejected", 4242, 4242)

    with pytest.raises(UnsafeSpool, match="owned by uid 4242, not by the daemon's user"):
        secure_spool(tmp_path / "spool")


def test_modes_are_tightened_inbox_sticky_and_nothing_else_group_writable(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    for folder in ("", "inbox", "processing", "accepted", "rejected"):
        (spool / folder).mkdir(exist_ok=True)
        os.chmod(spool / folder, 0o2777)  # noqa: S103 - the careless mode the daemon must tighten

    secure_spool(spool)

    modes = {folder: stat.S_IMODE(os.stat(spool / folder).st_mode) for folder in ("", "inbox", "processing")}
    assert modes[""] == 0o2755  # the root: nobody but the daemon may replace what is in it
    assert modes["inbox"] == 0o3775  # sticky: submitters cannot delete or rename one another's files
    assert modes["processing"] == 0o2755
    assert stat.S_IMODE(os.stat(spool / "accepted").st_mode) == stat.S_IMODE(os.stat(spool / "rejected").st_mode)


def inotify_watches() -> int:
    """Inotify watches this process holds: one ``inotify wd:`` line per watch in its descriptors' fdinfo."""
    count = 0
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            count += Path(f"/proc/self/fdinfo/{fd}").read_text().count("inotify wd:")
        except OSError:  # closed meanwhile
            continue
    return count


async def test_the_watcher_does_not_descend_into_a_linked_folder_in_the_inbox(store: SqlStore, tmp_path: Path) -> None:
    """A link to a big tree inside the inbox costs no inotify watch (the review counted 15,713 for /usr)."""
    tree = tmp_path / "tree"
    for index in range(100):
        (tree / f"d{index}").mkdir(parents=True)
    settings = SpoolSettings(path=tmp_path / "spool", watch=True, settle_seconds=0.0)
    intake = Intake(store, settings, SystemClock(), "itest1")
    intake.prepare()
    (tmp_path / "spool" / "inbox" / "link").symlink_to(tree)
    baseline = inotify_watches()
    stop = asyncio.Event()
    task = asyncio.create_task(intake.run(stop))
    try:
        # The watcher adds all its watches (one per folder, when recursive) before it reports any event.
        await wait_until(lambda: asyncio.to_thread(lambda: inotify_watches() > baseline), within=10)
        watches = inotify_watches() - baseline
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    assert watches == 1


def test_the_lock_file_is_the_daemons_alone(tmp_path: Path) -> None:
    """0600 when made, and tightened from an older start's 0660: a reader's shared flock could block a start."""
    database = tmp_path / "orchestrator.db"
    lock = tmp_path / "orchestrator.db.lock"
    lock.touch(mode=0o660)
    os.chmod(lock, 0o660)

    with daemon_lock(database):
        assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
        with pytest.raises(DaemonAlreadyRunning, match="another orchestrator daemon is using"), daemon_lock(database):
            pass
    lock.unlink()
    with daemon_lock(database):
        assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
