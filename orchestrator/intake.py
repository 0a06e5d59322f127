"""The intake: turns every file dropped into ``spool/inbox`` into exactly one job or one rejection.

Correctness comes from the claim, not from file events: a file is claimed by an atomic rename
into ``processing/`` under a fresh claim token; the job row records that token in the same
transaction that creates the job, so after a crash a file left in ``processing/`` is finished
either way (recorded → moved to ``accepted/``; not recorded → processed again). File events only
wake the loop early; a full rescan runs at start-up and on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import structlog

from orchestrator.clock import Clock
from orchestrator.config import SpoolSettings
from orchestrator.errors import OrchestratorError, SpecError
from orchestrator.jobs import derive_tuned_model_id
from orchestrator.logs import scrub
from orchestrator.memory import release_free_memory
from orchestrator.spec import JobFileParser, JobSpec, parse_job
from orchestrator.store.protocol import DuplicateJob, JobStore, NewJob
from orchestrator.store.rejections import NewRejection
from orchestrator.text import terminal_text

log = structlog.get_logger(__name__)

INBOX, PROCESSING, ACCEPTED, REJECTED = "inbox", "processing", "accepted", "rejected"
#: Separates the claim token (or job id) from the original name in processing/ and accepted/.
SEPARATOR = "--"
#: The suffix of the error report written beside a rejected file: never a job file itself.
ERROR_REPORT_SUFFIX = ".error.json"
#: Longest original name, in bytes, a file keeps inside the spool: a claim token or job id in front
#: and ``.error.json`` plus a uniquifier behind must still fit the usual 255-byte limit.
MAX_NAME_BYTES = 200
#: Seconds before a file whose handling failed (database locked, disk full) is tried again.
RETRY_AFTER_FAILURE_SECONDS = 2.0
#: A burst of files is recorded in transactions of at most this many jobs and request-body bytes:
#: one fsync'ed commit per file would cap the intake near a hundred files a second.
RECORD_BATCH_FILES = 100
RECORD_BATCH_BYTES = 8 * 1024 * 1024
#: Parsed bodies this large leave the parsing thread's memory arena holding several times their size.
RELEASE_MEMORY_AFTER_BYTES = 4 * 1024 * 1024
#: A file whose processing was started this many times, each interrupted by the daemon's end (a crash,
#: an out-of-memory kill while parsing it), is rejected unread at the next start instead of being
#: tried again: one poisonous file must not crash-loop the daemon.
QUARANTINE_AFTER_INTERRUPTIONS = 3
#: Separates the claim token from the count of processing starts in a processing/ name.
_STARTS = "."


def spool_name(name: str) -> str:
    """The name a claimed file keeps: the original, or for a very long one a shortened, unique form."""
    raw = os.fsencode(name)
    if len(raw) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return f"{os.fsdecode(raw[: MAX_NAME_BYTES - 20])}~{digest}.json"


def printable(name: str) -> str:
    """A file name as text for records and logs: undecodable bytes and control characters escaped."""
    return terminal_text(os.fsencode(name).decode("utf-8", "backslashreplace"))


class UnsafeSpool(OrchestratorError):
    """A spool folder the daemon refuses to use: a link, not a folder, or someone else's."""


#: Permission bits the daemon takes away from its spool folders at start-up: nobody but the daemon may
#: write the spool's root or the folders it moves files between (whoever can write a folder can
#: replace or delete what is in it); the inbox keeps its group's write access, with the sticky bit, so
#: submitters can drop files but not delete or rename one another's.
_NOT_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def secure_spool(root: Path) -> None:
    """Create the spool's folders, refuse unsafe ones, and tighten their modes.

    Each folder (the root and its four) must be a real folder, not a symbolic link, owned by the user
    the daemon runs as: a link would send the daemon's renames (and its own database, once) wherever it
    points. Each is opened without following links and checked and changed through that descriptor,
    so it cannot be swapped between the check and the change. Raises :class:`UnsafeSpool` naming the
    folder and the fix.
    """
    root.mkdir(parents=True, exist_ok=True)
    for name, folder in [("", root), *spool_dirs(root).items()]:
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP or os.path.islink(folder):
                raise UnsafeSpool(
                    f"spool folder {folder} is a symbolic link; the daemon never follows links in its spool: "
                    "replace it with a real folder owned by the daemon's user"
                ) from None
            if exc.errno == errno.ENOTDIR:
                raise UnsafeSpool(f"spool folder {folder} is not a folder; move it away and start again") from None
            raise UnsafeSpool(f"spool folder {folder} cannot be opened: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid():
                raise UnsafeSpool(
                    f"spool folder {folder} is owned by uid {info.st_uid}, not by the daemon's user (uid "
                    f"{os.geteuid()}); give it to that user (chown)"
                )
            mode = stat.S_IMODE(info.st_mode)
            wanted = (mode | stat.S_ISVTX) & ~stat.S_IWOTH if name == INBOX else mode & ~_NOT_WRITABLE_BY_OTHERS
            if wanted != mode:
                os.fchmod(fd, wanted)
                log.info("spool_folder_mode_tightened", folder=str(folder), was=f"{mode:04o}", now=f"{wanted:04o}")
        finally:
            os.close(fd)


def spool_dirs(root: Path) -> dict[str, Path]:
    """The four spool folders under ``root``."""
    return {name: root / name for name in (INBOX, PROCESSING, ACCEPTED, REJECTED)}


def is_candidate(name: str) -> bool:
    """Whether an inbox entry is meant as a job file: ``*.json``, not a dotfile (a write in progress)."""
    return name.endswith(".json") and not name.startswith(".")


def drop_job_file(spool_root: Path, name: str, data: bytes) -> Path:
    """Put a job file into the inbox atomically: written as a dotfile, synced, then renamed in."""
    inbox = spool_dirs(spool_root)[INBOX]
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / name
    temporary = inbox / f".drop-{secrets.token_hex(8)}.tmp"  # a dotfile: ignored until renamed; short: fits
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def accepted_files(spool_root: Path, job_ids: Collection[str]) -> list[Path]:
    """The files in ``spool/accepted/`` that became the jobs ``job_ids`` (named ``<job id>--<name>``)."""
    wanted = set(job_ids)
    folder = spool_dirs(spool_root)[ACCEPTED]
    try:
        with os.scandir(folder) as entries:
            return sorted(folder / e.name for e in entries if e.name.partition(SEPARATOR)[0] in wanted)
    except FileNotFoundError:
        return []


def new_job_from_file(
    data: bytes, *, source: str, intake_id: str, installation_id: str, max_bytes: int, parse: JobFileParser = parse_job
) -> NewJob:
    """The rows to record for a job file's bytes; raises :class:`SpecError` for a file that is not a job."""
    spec = parse(data, source=source, max_bytes=max_bytes)
    return new_job(spec, hashlib.sha256(data).hexdigest(), len(data), source=source, intake_id=intake_id,
                   installation_id=installation_id)


def new_job(
    spec: JobSpec, file_sha256: str, file_bytes: int, *, source: str, intake_id: str, installation_id: str
) -> NewJob:
    """The rows to record for a parsed job file.

    The request body is serialized here, once, and the parsed tree is dropped with the spec: a maximal
    job (20 MB of examples) then travels to the database as one string.
    """
    return NewJob(
        job_key=spec.job_key, priority=spec.priority, display_name=spec.display_name, base_model=spec.base_model,
        tuned_model_id=spec.tuned_model_id or derive_tuned_model_id(spec.job_key, spec.display_name, installation_id),
        labels=spec.labels, source_file=source, intake_id=intake_id, max_run_time=spec.max_run_time,
        stall_timeout=spec.stall_timeout, body_json=json.dumps(spec.body, ensure_ascii=False, separators=(",", ":")),
        example_count=spec.example_count, total_steps=spec.expected_total_steps,
        file_sha256=file_sha256, file_bytes=file_bytes,
    )


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A claimed file that is not a job: why, and the job it duplicates, if that is why."""

    claim: _Claim
    error: SpecError
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class _Claim:
    """A file claimed into processing/: its path there, its claim token and its original name."""

    path: Path
    token: str
    name: str


@dataclass(frozen=True, slots=True)
class _Unsettled:
    """A fresh file that is not a job yet: probably still being written, so it is looked at again."""

    problem: str


class Intake:
    """Watches the inbox and records jobs.

    ``on_new_jobs(count)`` is told how many jobs each recording transaction added (it wakes the
    scheduler and counts files: one per job); ``on_rejected`` is called once per rejected file.
    ``parse`` reads the forms of job file the configured tuning service takes
    (:func:`orchestrator.jobfiles.job_file_parser`).
    """

    def __init__(
        self,
        store: JobStore,
        settings: SpoolSettings,
        clock: Clock,
        installation_id: str,
        on_new_jobs: Callable[[int], None] = lambda count: None,
        on_rejected: Callable[[], None] = lambda: None,
        parse: JobFileParser = parse_job,
    ) -> None:
        self._store = store
        self._parse = parse
        self._settings = settings
        self._clock = clock
        self._installation_id = installation_id
        self._on_new_jobs = on_new_jobs
        self._on_rejected = on_rejected
        self._dirs = spool_dirs(settings.path)
        self._kick = asyncio.Event()
        self._ignored: set[str] = set()
        #: Claimed files that looked unfinished: path → monotonic time to look again.
        self._unsettled: dict[Path, float] = {}

    def prepare(self) -> None:
        """Create the spool folders, or check the ones there: see :func:`secure_spool`."""
        secure_spool(self._settings.path)

    async def run(self, stop: asyncio.Event) -> None:
        """Finish what a previous run left in processing/, then scan on events and on a timer."""
        self.prepare()
        await self.recover()
        async with asyncio.TaskGroup() as tasks:
            if self._settings.watch:
                tasks.create_task(self._watch(stop))
            while not stop.is_set():
                # Cleared before the scan, so that a file arriving during it wakes the next one; and
                # a scan that took files in is followed at once by another (a burst still arriving).
                self._kick.clear()
                try:
                    if await self.scan(stop):
                        continue
                except OSError as exc:  # the inbox itself unreadable (removed, permissions): try again later
                    log.error("inbox_scan_failed", error=f"{type(exc).__name__}: {exc}")
                waiters = [asyncio.ensure_future(self._kick.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=self._next_wait(), return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()

    def _next_wait(self) -> float:
        wait = self._settings.rescan_interval
        if self._unsettled:
            wait = min(wait, max(0.0, min(self._unsettled.values()) - time.monotonic()))
        return wait

    async def _watch(self, stop: asyncio.Event) -> None:
        """Wake the scan loop on inbox changes (inotify through watchfiles)."""
        import watchfiles

        try:
            async for _changes in watchfiles.awatch(
                self._dirs[INBOX], stop_event=stop, debounce=200, step=20, recursive=False
            ):
                self._kick.set()
        except (OSError, RuntimeError) as exc:  # e.g. inotify watch limit reached: the rescan still works
            log.warning("inbox_watch_unavailable", error=str(exc))

    async def recover(self) -> None:
        """Finish every file a crashed run left in processing/.

        Each such file had its processing interrupted. The count of starts is kept in its name and
        raised (renamed, and the folder synced) *before* it is read again, so that a file that kills
        the daemon while being parsed is counted even then; at :data:`QUARANTINE_AFTER_INTERRUPTIONS`
        it is rejected unread, unless it was recorded as a job already.
        """
        processing = self._dirs[PROCESSING]
        for path in sorted(processing.iterdir()):
            claim, starts = _claim_in_processing(path)
            log.info("intake_recovering", file=printable(claim.name), interrupted=starts)
            if starts < QUARANTINE_AFTER_INTERRUPTIONS:
                counted = processing / f"{claim.token}{_STARTS}{starts + 1}{SEPARATOR}{claim.name}"
                os.rename(path, counted)
                _sync_folder(processing)
                claim = _Claim(counted, claim.token, claim.name)
            await self._handle(claim, interrupted=starts)

    async def scan(self, stop: asyncio.Event | None = None) -> int:
        """Claim and handle every candidate in the inbox (and unsettled files now due); returns how many.

        Fresh files go in batches (``RECORD_BATCH_FILES``, ``RECORD_BATCH_BYTES``): claimed, then
        read and parsed in one worker-thread call, and their jobs recorded in one transaction.
        """
        handled = 0
        now = time.monotonic()
        for path, due in list(self._unsettled.items()):
            if due <= now:
                del self._unsettled[path]
                await self._handle(_claim_in_processing(path)[0])
                handled += 1
        with os.scandir(self._dirs[INBOX]) as entries:
            names = sorted(entry.name for entry in entries if self._wanted(entry))
        for start in range(0, len(names), RECORD_BATCH_FILES):
            if stop is not None and stop.is_set():
                break
            claims = [claim for name in names[start : start + RECORD_BATCH_FILES] if (claim := self._claim(name))]
            handled += len(claims)
            await self._take_in(claims)
        return handled

    def _claim(self, name: str) -> _Claim | None:
        """Move an inbox file into processing/ under a fresh token; None when it cannot be claimed."""
        token = secrets.token_hex(8)
        kept = spool_name(name)
        claimed = self._dirs[PROCESSING] / f"{token}{SEPARATOR}{kept}"
        try:
            os.rename(self._dirs[INBOX] / name, claimed)
        except FileNotFoundError:
            return None  # taken away between the listing and the claim
        except OSError as exc:  # e.g. no permission to move it: nothing was claimed, nothing changed
            self._ignore_once(name, f"cannot be claimed: {exc.strerror}")
            return None
        return _Claim(claimed, token, kept)

    def _wanted(self, entry: os.DirEntry[str]) -> bool:
        """Job files and symlinks (which get rejected); anything else is logged once and left alone."""
        if entry.name.endswith(ERROR_REPORT_SUFFIX):
            self._ignore_once(entry.name, f"an error report ({ERROR_REPORT_SUFFIX}), not a job file")
            return False
        if is_candidate(entry.name) and (entry.is_symlink() or entry.is_file(follow_symlinks=False)):
            return True
        if not entry.name.startswith("."):
            self._ignore_once(entry.name, "not a *.json regular file")
        return False

    def _ignore_once(self, name: str, reason: str) -> None:
        if name not in self._ignored:
            self._ignored.add(name)
            log.info("inbox_entry_ignored", file=printable(name), reason=reason)

    async def _handle(self, claim: _Claim, interrupted: int = 0) -> None:
        """One claimed file left from earlier (a crash, a failure, unsettled) to its end.

        It may be recorded already, by a run that died before moving it: then it is accepted (or
        rejected, to the name its rejection row holds) as is. Otherwise one whose processing was
        ``interrupted`` too often is rejected unread.
        """
        try:
            existing = await self._store.job_by_intake_id(claim.token)
            if existing is not None:
                self._finish(claim.path, ACCEPTED, f"{existing.id}{SEPARATOR}{claim.name}")
                return
            rejection = await self._store.rejection_by_intake_id(claim.token)
            if rejection is not None:
                os.rename(claim.path, self._dirs[REJECTED] / rejection.rejected_file)
                return
            if interrupted >= QUARANTINE_AFTER_INTERRUPTIONS:
                problem = (
                    f"its processing was interrupted {interrupted} times (the daemon stopped or was killed while "
                    "handling it, for example out of memory while parsing it); it is set aside unread so that it "
                    "cannot stop the daemon again"
                )
                await self._reject([_Refusal(claim, SpecError(printable(claim.name), "", problem))])
                return
        except Exception as exc:
            await self._defer(claim, exc)
            return
        await self._take_in([claim])

    async def _take_in(self, claims: list[_Claim]) -> None:
        """Claimed files to their ends: each accepted, rejected, left to settle, or deferred.

        Files are read and parsed in a worker thread, as many per call as fit ``RECORD_BATCH_BYTES``
        of request bodies, and each such batch is recorded in one transaction. A failure (database
        locked, disk full) leaves a file in processing/, where it is looked at again after a pause,
        and at the next start in any case: nothing is lost, and the intake goes on with the others.
        """
        while claims:
            outcomes = await asyncio.to_thread(self._read_jobs, claims)
            batch: list[tuple[_Claim, NewJob]] = []
            refused: list[_Refusal] = []
            for claim, outcome in zip(claims, outcomes, strict=False):
                try:
                    if isinstance(outcome, NewJob):
                        batch.append((claim, outcome))
                    elif isinstance(outcome, SpecError):
                        refused.append(_Refusal(claim, outcome))
                    elif isinstance(outcome, _Unsettled):
                        self._unsettled[claim.path] = time.monotonic() + self._settings.settle_seconds
                        log.info("intake_file_unsettled", file=printable(claim.name), error=outcome.problem)
                    else:
                        await self._defer(claim, outcome)
                except Exception as exc:
                    await self._defer(claim, exc)
            if refused:
                await self._reject(refused)
            if batch:
                await self._record(batch)
            claims = claims[len(outcomes) :]

    def _read_jobs(self, claims: list[_Claim]) -> list[NewJob | SpecError | _Unsettled | Exception]:
        """:meth:`_read_job` for the first claims, until their bodies fill ``RECORD_BATCH_BYTES``.

        After large bodies, the memory their parsing freed goes back to the system (see
        :mod:`orchestrator.memory`) before the writer thread makes its own copies of them.
        """
        outcomes: list[NewJob | SpecError | _Unsettled | Exception] = []
        size = 0
        for claim in claims:
            try:
                outcome: NewJob | SpecError | _Unsettled | Exception = self._read_job(claim)
            except Exception as exc:  # e.g. an I/O error reading it: this file waits, the others go on
                outcome = exc
            outcomes.append(outcome)
            if isinstance(outcome, NewJob):
                size += len(outcome.body_json)
                if size >= RECORD_BATCH_BYTES:
                    break
        if size >= RELEASE_MEMORY_AFTER_BYTES:
            release_free_memory()
        return outcomes

    def _read_job(self, claim: _Claim) -> NewJob | SpecError | _Unsettled:
        """Read and parse a claimed file (in a worker thread): the job, or why it is not one (yet)."""
        shown = printable(claim.name)
        max_bytes = self._settings.max_file_bytes
        data, mtime, problem = _read_claimed(claim.path, max_bytes)
        if problem is not None or data is None:
            return SpecError(shown, "", problem or "unreadable")
        try:
            spec = self._parse(data, source=shown, max_bytes=max_bytes)
        except SpecError as error:
            if len(data) >= RELEASE_MEMORY_AFTER_BYTES:  # what a large refused file cost goes back at once
                del data
                release_free_memory()
            if time.time() - mtime < self._settings.settle_seconds:
                return _Unsettled(error.problem)
            return error
        except (RecursionError, MemoryError, ValueError, TypeError) as exc:
            # The parser's own bug must not take the daemon down or leave the file in limbo.
            return SpecError(shown, "", f"could not be read as a job ({type(exc).__name__})")
        if spec.notes:
            log.info("job_file_converted", file=shown, left_out=list(spec.notes))
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
        del data  # not held while the body is serialized: a maximal file would be in memory twice more
        return new_job(spec, digest, size, source=shown, intake_id=claim.token, installation_id=self._installation_id)

    async def _record(self, batch: list[tuple[_Claim, NewJob]]) -> None:
        """Record a batch of jobs in one transaction, then move each file to accepted/ (or rejected/)."""
        try:
            results = await self._store.add_jobs([new for _, new in batch], self._clock.now())
        except Exception as exc:
            for claim, _ in batch:
                await self._defer(claim, exc)
            return
        duplicates: list[_Refusal] = []
        for (claim, new), result in zip(batch, results, strict=True):
            try:
                if isinstance(result, DuplicateJob):
                    field = "orchestrator.job_key" if result.what == "job key" else "orchestrator.tuned_model_id"
                    duplicates.append(_Refusal(claim, SpecError(new.source_file, field, str(result)),
                                               result.existing_job_id))
                    continue
                self._finish(claim.path, ACCEPTED, f"{result.id}{SEPARATOR}{claim.name}")
            except Exception as exc:  # recorded, not moved: the retry finds the job (or rejection) by its token
                await self._defer(claim, exc)
                continue
            log.info("job_accepted", job_id=result.id, file=new.source_file,
                     job_key=new.job_key, examples=new.example_count)
        recorded = sum(not isinstance(result, DuplicateJob) for result in results)
        if recorded:
            self._on_new_jobs(recorded)
        if duplicates:
            await self._reject(duplicates)

    async def _defer(self, claim: _Claim, exc: Exception) -> None:
        """Leave a claimed file whose handling failed in processing/, to be tried again after a pause."""
        if await asyncio.to_thread(os.path.lexists, claim.path):
            self._unsettled[claim.path] = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
        log.error("intake_file_deferred", file=printable(claim.name), error=f"{type(exc).__name__}: {exc}",
                  retry_in=RETRY_AFTER_FAILURE_SECONDS)

    async def _reject(self, refused: list[_Refusal]) -> None:
        """Write each ``NAME.error.json`` (atomically), record the rejections, then move each file beside its report.

        The rows of a burst go in one transaction (one per file would cap rejections near the disk's
        fsync rate). The file in processing/ is the recovery point: a crash before the rows leaves it
        to be rejected again (overwriting the same report); a crash after them leaves it to be moved
        to the name its row holds (:meth:`_handle`). So a rejected file never lacks its reason or its
        row, and a row never names a file that was not moved.
        """
        placed: list[tuple[_Refusal, NewRejection]] = []
        taken: set[str] = set()  # names given to this burst's files, not yet moved there
        for refusal in refused:
            claim, error = refusal.claim, refusal.error
            try:
                target = self._free_name(self._dirs[REJECTED], claim.name, taken)
                taken.add(target.name)
                self._write_report(target, error, refusal.duplicate_of)
            except Exception as exc:
                await self._defer(claim, exc)
                continue
            placed.append((refusal, NewRejection(
                file=error.file, rejected_file=target.name, field=error.field, problem=error.problem,
                duplicate_of=refusal.duplicate_of, intake_id=claim.token,
            )))
        if not placed:
            return
        try:
            rows = await self._store.add_rejections([new for _, new in placed], self._clock.now())
        except Exception as exc:
            for refusal, _ in placed:
                await self._defer(refusal.claim, exc)
            return
        for (refusal, _), row in zip(placed, rows, strict=True):
            error, destination = refusal.error, self._dirs[REJECTED] / row.rejected_file
            try:
                os.rename(refusal.claim.path, destination)
            except Exception as exc:  # recorded, not moved: the retry finds the rejection by its token
                await self._defer(refusal.claim, exc)
                continue
            log.warning("job_rejected", file=error.file, field=error.field, problem=error.problem,
                        moved_to=str(destination), rejection=row.id)
            self._on_rejected()

    @staticmethod
    def _write_report(target: Path, error: SpecError, duplicate_of: str | None) -> None:
        """``<target>.error.json``: the error in words and as data, written atomically."""
        report = {"file": error.file, "error": str(error), **error.as_dict()}
        if duplicate_of:
            report["duplicate_of_job"] = duplicate_of
        report = {key: scrub(value) for key, value in report.items()}  # a problem may quote the file's text
        error_path = target.with_name(f"{target.name}{ERROR_REPORT_SUFFIX}")
        temporary = error_path.with_name(f".{error_path.name}.tmp")
        temporary.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, error_path)

    def _finish(self, path: Path, folder: str, name: str) -> None:
        os.rename(path, self._free_name(self._dirs[folder], name))

    @staticmethod
    def _free_name(folder: Path, name: str, taken: Collection[str] = ()) -> Path:
        """``folder/name``, or a variant with a short suffix when that name is taken (or in ``taken``)."""
        target = folder / name
        while target.name in taken or target.exists() or target.is_symlink():
            stem, dot, suffix = name.rpartition(".")
            tag = secrets.token_hex(3)
            target = folder / (f"{stem}.{tag}{dot}{suffix}" if dot else f"{name}.{tag}")
        return target


def _claim_in_processing(path: Path) -> tuple[_Claim, int]:
    """The claim a processing/ file stands for, and how many times its processing was started.

    Names are ``TOKEN--NAME`` as claimed (one start) and ``TOKEN.STARTS--NAME`` once recovery counted
    more; a name without a token (put there by hand) gets a fresh one.
    """
    head, _, name = path.name.partition(SEPARATOR)
    if not name:
        return _Claim(path, secrets.token_hex(8), path.name), 1
    token, _, starts = head.partition(_STARTS)
    return _Claim(path, token, name), int(starts) if starts.isdigit() else 1


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename in it survives a crash that follows."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_claimed(path: Path, max_bytes: int) -> tuple[bytes | None, float, str | None]:
    """A claimed file's bytes and mtime, or why it cannot be a job; never follows links or blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, 0.0, "is a symbolic link; links are never followed out of the spool"
        return None, 0.0, f"cannot be opened: {exc.strerror}"
    with contextlib.closing(os.fdopen(fd, "rb")) as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, info.st_mtime, "is not a regular file"
        if info.st_size > max_bytes:
            limit = f"the limit is {max_bytes:,} (spool.max_file_bytes)"
            return None, info.st_mtime, f"is {info.st_size:,} bytes; {limit}"
        return handle.read(max_bytes + 1), info.st_mtime, None
