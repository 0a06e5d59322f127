"""The ``orchestrator`` command: parses arguments, calls the library, prints. No business logic.

Every command that reads settings takes ``--config FILE`` (or ``ORCHESTRATOR_CONFIG``); the
environment overrides the file (``ORCHESTRATOR_<SECTION>_<KEY>``) and flags override both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from orchestrator import __version__, stop_signals
from orchestrator.clock import Clock, SystemClock
from orchestrator.config import Settings, load_settings, with_overrides
from orchestrator.errors import OrchestratorError, SpecError
from orchestrator.jobs import JobState
from orchestrator.text import terminal_text

if TYPE_CHECKING:
    from orchestrator.spec import JobSpec
    from orchestrator.store import StatusReader

T = TypeVar("T")

EXIT_USAGE = 2
#: The time the commands measure ages and retention against (tests pin it).
clock: Clock = SystemClock()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        from orchestrator.emulator.cli import main as emulator_main

        return emulator_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.handler(args)
    except (OrchestratorError, OSError) as exc:  # a plain mistake (a path, a permission) is one line
        print(f"orchestrator: {terminal_text(str(exc))}", file=sys.stderr)
        return 1
    return result


#: What ``orchestrator --help`` says above the commands.
DESCRIPTION = """Turn a folder of tuning-job files into tuned models, and keep an honest record of every job.
'run' is the daemon; the other commands read and steer its status database."""
#: What ``orchestrator --help`` says below the commands.
EXAMPLES = """examples:
  orchestrator demo                          the tutorial job end to end, against the built-in emulator
  orchestrator run --config orchestrator.toml
  orchestrator submit my-job.json            validate a job file, then drop it into the daemon's inbox
  orchestrator status                        one line per job (--json for scripts)
  orchestrator show 3dbb                     one job in full; a unique id prefix is enough
  orchestrator watch                         live progress until the active jobs end
  orchestrator retry 3dbb                    a failed job again, under a new tuned-model id
  orchestrator rejected                      the job files the intake refused, and why
  orchestrator prune --older-than 30d --dry-run

Settings come from --config FILE or $ORCHESTRATOR_CONFIG, and any key from ORCHESTRATOR_<SECTION>_<KEY>.
Every command has its own --help. More: README.md and docs/operations.md.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="orchestrator", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, help_text: str, handler: Any, into: Any = commands) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = into.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("--config", type=Path, default=os.environ.get("ORCHESTRATOR_CONFIG"),
                         help="TOML settings file (default: $ORCHESTRATOR_CONFIG, else built-in defaults)")
        return sub

    run = command("run", "run the daemon in the foreground until SIGTERM or Ctrl-C", _run)
    run.add_argument("--spool", type=Path, help="spool folder (spool.path)")
    run.add_argument("--database", type=Path, help="status database file (database.path)")
    run.add_argument("--api-base-url", help='"emulator" or the API URL (api.base_url)')
    run.add_argument("--auth", choices=["none", "api_key", "adc"], help="authentication mode (api.auth)")
    run.add_argument("--max-active-jobs", type=int, help="remote jobs at once (scheduler.max_active_jobs)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="daemon.log_level")
    run.add_argument("--log-format", choices=["auto", "json", "console"], help="daemon.log_format")

    demo_help = "run the tutorial job end to end against the built-in emulator"
    demo = commands.add_parser("demo", help=demo_help, description=(
        f"{demo_help}: start the emulator and the daemon in a temporary folder, drop the REST tutorial's job "
        "file (verbatim) into the spool, show its progress until it succeeds, and print where the status "
        "database is. Needs no credentials and no network."
    ))
    demo.set_defaults(handler=_demo)
    demo.add_argument("--workdir", type=Path, help="folder for the spool and database (default: a new temp folder)")
    demo.add_argument("--verbose", action="store_true", help="show the daemon's log lines")
    demo.add_argument("--backend", choices=["gemini", "vertex"], default="gemini",
                      help="the tuning service to run it on: the Gemini API (default) or Vertex AI, both emulated")

    commands.add_parser(
        "emulator",
        help="serve the Gemini API, Vertex AI and Cloud Storage emulator (see: orchestrator emulator --help)",
    )

    submit = command("submit", "validate a job file and drop it atomically into the inbox", _submit)
    submit.add_argument("file", type=Path)
    submit.add_argument("--spool", type=Path, help="spool folder (spool.path)")
    submit.add_argument("--database", type=Path, help="status database file (database.path), to find duplicates")

    rejected = command("rejected", "the job files the intake rejected, newest first, with the reason", _rejected)
    rejected.add_argument("--all", action="store_true", help="also those resolved by a resubmission")
    rejected.add_argument("--limit", type=int, default=200)
    rejected.add_argument("--json", action="store_true", help="print JSON")
    rejected.add_argument("--spool", type=Path, help="spool folder (spool.path)")
    rejected.add_argument("--database", type=Path, help="status database file (database.path)")

    resubmit = command("resubmit", "drop a fixed file in place of a rejected one, and mark the rejection resolved",
                       _resubmit)
    resubmit.add_argument("rejection", help="rejection id or unique id prefix (see: orchestrator rejected)")
    resubmit.add_argument("--file", type=Path,
                          help="the fixed job file (default: the rejected file itself, edited in spool/rejected/)")
    resubmit.add_argument("--spool", type=Path, help="spool folder (spool.path)")
    resubmit.add_argument("--database", type=Path, help="status database file (database.path)")

    status = command("status", "one line per job", _status)
    status.add_argument("--state", action="append", choices=[s.value for s in JobState], help="only these states")
    status.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="only jobs with this label")
    status.add_argument("--limit", type=int, default=200)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--database", type=Path, help="status database file (database.path)")

    daemons = command("daemons", "the daemons sharing this database: running, stopped or dead, and what they hold",
                      _daemons)
    daemons.add_argument("--json", action="store_true", help="print JSON")
    daemons.add_argument("--database", type=Path, help="status database file (database.path)")

    show = command("show", "the full record of one job", _show)
    show.add_argument("job", help="job id, unique id prefix, or job key")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--database", type=Path, help="status database file (database.path)")

    cancel = command("cancel", "cancel a job (queued: at once; running: on the API, then polled to its end)", _cancel)
    cancel.add_argument("job", help="job id, unique id prefix, or job key")
    cancel.add_argument("--database", type=Path, help="status database file (database.path)")

    retry = command("retry", "run a failed or cancelled job again, as a new job with a new tuned-model id", _retry)
    retry.add_argument("job", help="job id, unique id prefix, or job key")
    retry.add_argument("--database", type=Path, help="status database file (database.path)")

    watch = command("watch", "live progress bars for every active job, until they end (Ctrl-C to leave)", _watch)
    watch.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="only jobs with this label")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    watch.add_argument("--database", type=Path, help="status database file (database.path)")

    plot = command("plot", "draw a job's loss curve (per step, epochs marked) into a PNG, SVG or PDF file", _plot)
    plot.add_argument("job", help="job id, unique id prefix, or job key")
    plot.add_argument("-o", "--output", type=Path, required=True, help="loss.png, loss.svg or loss.pdf")
    plot.add_argument("--database", type=Path, help="status database file (database.path)")

    prune = command("prune", "delete the history and the accepted job files of jobs that ended long ago "
                             "(unfinished jobs are kept)", _prune)
    prune.add_argument("--older-than", required=True, type=_duration, metavar="AGE",
                       help="finished more than AGE ago: 30d, 12h, 90m, 2w")
    prune.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")
    prune.add_argument("--json", action="store_true", help="print JSON")
    prune.add_argument("--spool", type=Path, help="spool folder (spool.path), whose accepted/ files go too")
    prune.add_argument("--database", type=Path, help="status database file (database.path)")

    db = commands.add_parser("db", help="status database maintenance (see: orchestrator db --help)",
                             description="Status database maintenance. The daemon applies the migrations "
                                         "itself when it starts; 'upgrade' does it without starting it.")
    db.set_defaults(handler=lambda _args: _usage(db))
    db_commands = db.add_subparsers(title="db commands", metavar="DB_COMMAND")
    upgrade = command("upgrade", "apply the schema migrations to the status database (the daemon does this at "
                                 "start-up too)", _db_upgrade, into=db_commands)
    upgrade.add_argument("--database", type=Path, help="status database file (database.path)")
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    """A command group given without its sub-command: its help, as a usage error."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _read(settings: Settings, query: Callable[[StatusReader], Awaitable[T]]) -> T:
    """Run one query through a read-only connection to the status database."""
    from orchestrator.store import open_reader

    async def run() -> T:
        async with open_reader(settings.database) as reader:
            return await query(reader)

    return asyncio.run(run())


def _settings(args: argparse.Namespace, **sections: dict[str, Any]) -> Settings:
    settings = load_settings(args.config)
    database = getattr(args, "database", None)
    if database is not None:
        sections.setdefault("database", {})["path"] = str(database)
    spool = getattr(args, "spool", None)
    if spool is not None:
        sections.setdefault("spool", {})["path"] = str(spool)
    return with_overrides(settings, **sections)


def _run(args: argparse.Namespace) -> int:
    stop_signals.catch_early()  # already done by the console script; here for callers of main()
    from orchestrator import logs
    from orchestrator.daemon import run_daemon

    settings = _settings(
        args,
        api={"base_url": args.api_base_url, "auth": args.auth},
        scheduler={"max_active_jobs": args.max_active_jobs},
        daemon={"log_level": args.log_level, "log_format": args.log_format},
    )
    logs.configure(settings.daemon.log_level, settings.daemon.log_format)
    asyncio.run(run_daemon(settings))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from orchestrator import logs
    from orchestrator.demo import run_demo

    logs.configure("info" if args.verbose else "warning", "console")
    return asyncio.run(run_demo(args.workdir, backend=args.backend))


def _submit(args: argparse.Namespace) -> int:
    from orchestrator.intake import is_candidate

    settings = _settings(args)
    data = args.file.read_bytes()
    name = args.file.name if is_candidate(args.file.name) else f"{args.file.name}.json"
    spec = _validated(settings, args.file, data)
    if spec is None:
        return 1
    target = _drop(settings, name, data, spec)
    examples = "examples counted by the service" if spec.example_count is None else f"{spec.example_count} examples"
    print(f"submitted {target} (job key {spec.job_key}, {examples})")
    return 0


def _validated(settings: Settings, file: Path, data: bytes) -> JobSpec | None:
    """The file's job spec, or None after printing why it would be rejected."""
    from orchestrator.jobfiles import job_file_parser

    try:
        return job_file_parser(settings)(data, source=str(file), max_bytes=settings.spool.max_file_bytes)
    except SpecError as error:
        print(f"orchestrator: rejected: {error}", file=sys.stderr)
        return None


def _drop(settings: Settings, name: str, data: bytes, spec: JobSpec) -> Path:
    """Drop a valid job file into the daemon's inbox, unless it is not there or the job is known already.

    The spool is never created here: a missing one means this command did not find the daemon's
    settings (``--config``, ``ORCHESTRATOR_CONFIG``), and a file dropped elsewhere would wait for ever.
    A file whose job key (or tuned-model id) the database already holds would only be rejected.
    """
    from orchestrator.intake import INBOX, drop_job_file, spool_dirs
    from orchestrator.store.sql import RETRYABLE

    inbox = spool_dirs(settings.spool.path)[INBOX]
    if not inbox.is_dir():
        raise OrchestratorError(
            f"no spool inbox at {inbox}: give the daemon's settings (--config FILE or ORCHESTRATOR_CONFIG) "
            "or --spool; the daemon creates the spool when it starts"
        )
    if settings.database.url or settings.database.path.exists():
        existing = _read(settings, lambda reader: reader.job_by_identity(spec.job_key, spec.tuned_model_id))
        if existing is not None:
            again = (f"orchestrator retry {existing.id}" if existing.state in RETRYABLE
                     else "give the file another orchestrator.job_key")
            raise OrchestratorError(
                f"duplicate: job key {spec.job_key!r} is already recorded as job {existing.id} "
                f"({existing.state.value}); to run it again: {again}"
            )
    return drop_job_file(settings.spool.path, name, data)


def _rejected(args: argparse.Namespace) -> int:
    from orchestrator.intake import REJECTED, spool_dirs
    from orchestrator.report import age, rejection_json

    settings = _settings(args)
    found = _read(settings, lambda reader: reader.list_rejections(args.all, args.limit))
    if args.json:
        print(json.dumps([rejection_json(rejection) for rejection in found], indent=2))
        return 0
    if not found:
        print("no rejected files" if args.all else "no open rejections (--all: also the resolved ones)")
        return 0
    now = clock.now()
    rejected_dir = spool_dirs(settings.spool.path)[REJECTED]
    table = Table(box=None, header_style="bold", expand=True)
    for column in ("id", "age", "file", "why"):
        table.add_column(column, no_wrap=column != "why", overflow="fold", ratio=2 if column == "why" else None)
    for rejection in found:
        why = rejection.error.removeprefix(f"{rejection.file}: ")
        if rejection.resolved_at is not None:
            why = f"(resubmitted as {rejection.resubmitted_as}) {why}"
        elif not (rejected_dir / rejection.rejected_file).exists():
            why = f"(file no longer in rejected/) {why}"
        table.add_row(*_plain(rejection.id, age(rejection.rejected_at, now), rejection.rejected_file, why))
    Console().print(table, highlight=False)
    return 0


def _resubmit(args: argparse.Namespace) -> int:
    from orchestrator.intake import ERROR_REPORT_SUFFIX, REJECTED, spool_dirs
    from orchestrator.store import open_store

    settings = _settings(args)
    rejection = _read(settings, lambda reader: reader.rejection(args.rejection))
    if rejection.resolved_at is not None:
        raise OrchestratorError(f"rejection {rejection.id} was resubmitted already, as {rejection.resubmitted_as}")
    rejected = spool_dirs(settings.spool.path)[REJECTED] / rejection.rejected_file
    source = args.file or rejected
    if args.file is None and rejected.is_symlink():  # a link is never followed out of the spool
        raise OrchestratorError(f"{rejected} is a symbolic link: give the fixed job file with --file")
    if args.file is None and not rejected.exists():
        raise OrchestratorError(f"{rejected} is no longer there (moved by hand?): give the fixed job file with --file")
    data = source.read_bytes()
    spec = _validated(settings, source, data)
    if spec is None:
        return 1
    target = _drop(settings, rejection.rejected_file, data, spec)

    async def resolve() -> None:
        async with open_store(settings.database, upgrade=False) as store:
            await store.resolve_rejection(rejection.id, clock.now(), target.name)

    asyncio.run(resolve())
    for leftover in (rejected, rejected.with_name(rejected.name + ERROR_REPORT_SUFFIX)):
        leftover.unlink(missing_ok=True)
    print(f"resubmitted {source} as {target}; rejection {rejection.id} resolved")
    return 0


def _plain(*cells: str) -> list[Text]:
    """Table cells as plain text: a ``[/bold]`` in a display name is shown, never taken for markup."""
    return [Text(terminal_text(cell)) for cell in cells]


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise OrchestratorError(f"--label {pair!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


def _status(args: argparse.Namespace) -> int:
    from orchestrator.report import job_json, status_table

    settings = _settings(args)

    states, labels = [JobState(s) for s in args.state or []], _labels(args.label)
    jobs = _read(settings, lambda reader: reader.list_jobs(states, labels, args.limit))
    if args.json:
        price = settings.vertex.price_per_million_tokens
        print(json.dumps([job_json(job, price) for job in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs match the filters" if states or labels else "no jobs")
        return 0
    console = Console()
    columns, rows = status_table(jobs, clock.now(), console.width)
    table = Table(box=None, header_style="bold", padding=(0, 1, 0, 0), pad_edge=False)
    for name in columns:  # status_table fitted the cells; the ellipsis is only a safety net
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*_plain(*row))
    console.print(table, highlight=False)
    return 0


def _daemons(args: argparse.Namespace) -> int:
    from orchestrator.report import age, daemon_json

    settings = _settings(args)
    found = _read(settings, lambda reader: reader.daemons())
    now = clock.now()
    if args.json:
        print(json.dumps([daemon_json(daemon, now) for daemon in found], indent=2))
        return 0
    if not found:
        print("no daemon has used this database yet")
        return 0
    table = Table(box=None, header_style="bold", expand=True)
    for column in ("daemon", "status", "heartbeat", "started", "holds", "spool"):
        table.add_column(column, no_wrap=column != "spool", overflow="fold")
    for daemon in found:
        table.add_row(daemon.id, daemon.status(now), f"{age(daemon.heartbeat_at, now)} ago",
                      age(daemon.started_at, now), str(daemon.jobs_held), daemon.spool)
    Console().print(table, highlight=False)
    return 0


def _show(args: argparse.Namespace) -> int:
    from orchestrator.report import (
        detail_json,
        epoch_summary,
        estimated_cost,
        examples_words,
        loss_chart,
        progress_pct,
        state_words,
        substate_words,
    )

    settings = _settings(args)

    detail = _read(settings, lambda reader: reader.detail(args.job))
    if args.json:
        print(json.dumps(detail_json(detail, settings.vertex.price_per_million_tokens), indent=2))
        return 0
    job = detail.job
    console = Console()
    price = settings.vertex.price_per_million_tokens
    cost = estimated_cost(job, price)
    console.print(Text.assemble((job.id, "bold"), "  ", terminal_text(job.display_name or ""), "  ",
                                (state_words(job), "bold")), highlight=False)
    for label, value in (
        ("tuned model", job.model_name), ("endpoint", job.endpoint), ("operation", job.operation_name),
        ("remote job", job.remote_job),
        ("remote state", job.remote_state and " ".join(filter(None, [job.remote_state, substate_words(job) and
                                                                     f"({substate_words(job)})"]))),
        ("billable tokens", job.billable_tokens and f"{job.billable_tokens:,}" + (
            f" (estimated cost {cost:,.4f} at your price of {price:g} per million tokens)" if cost is not None
            else "")),
        ("training data", job.training_data_uri), ("validation data", job.validation_data_uri),
        ("base model", job.base_model),
        ("job key", job.job_key), ("file", job.source_file),
        ("retry of", job.retry_of and f"{job.retry_of} (this job is a new attempt of it)"),
        ("retried as", detail.retried_as and f"{detail.retried_as} (the next attempt of this job)"),
        ("examples", f"{examples_words(detail)} (job file {detail.file_bytes:,} bytes)"),
        ("hyperparameters", json.dumps(dict(detail.hyperparameters))),
        ("progress", f"{job.completed_steps}/{job.total_steps or '?'} steps ({progress_pct(job) or 0:.0f}%)"),
        ("last loss", job.last_loss),
        ("error", " ".join(filter(None, [None if job.error_code is None else f"[{job.error_code}]", job.error_status,
                                         job.error_message]))),
        ("retrying", job.last_error and f"attempt {job.attempts}: {job.last_error}"),
    ):
        if value not in (None, ""):
            console.print(f"  {label:<16} {terminal_text(str(value))}", highlight=False, markup=False)
    console.print("\n[bold]timeline[/bold]")
    for event in detail.events:
        why = json.dumps(dict(event.detail)) if event.detail else ""
        console.print(f"  {event.at}  {event.from_state or '-':>10} → {event.to_state:<10} {terminal_text(why)}",
                      highlight=False, soft_wrap=True, markup=False)
    if detail.snapshots:
        snapshots = detail.snapshots
        console.print(f"\n[bold]snapshots[/bold] ({len(snapshots)} steps; every one: --json, or the loss_curve view)")
        table = Table("epoch", "steps", "first loss", "last loss", "mean loss", box=None, header_style="bold",
                      padding=(0, 2))
        for row in epoch_summary(snapshots):
            table.add_row(str(row["epoch"]), row["steps"], *(f"{row[k]:.4f}" for k in ("first", "last", "mean")))
        console.print(table)
        console.print(f"\n[bold]loss[/bold] ({snapshots[0].mean_loss:.4f} → {snapshots[-1].mean_loss:.4f})")
        for line in loss_chart(snapshots):
            console.print(f"  {line}", highlight=False)
    if detail.notifications:
        console.print("\n[bold]webhooks[/bold]")
        for note in detail.notifications:
            outcome = note.state + (f" at {note.finished_at}" if note.finished_at else "")
            console.print(f"  {note.type:<14} {outcome}  ({len(note.attempts)} attempts)  {note.id}", highlight=False)
            for attempt in note.attempts:
                answer = "no answer" if attempt.status_code is None else f"HTTP {attempt.status_code}"
                console.print(escape(f"    {attempt.at}  {attempt.outcome:<9} {answer:<9} {attempt.seconds:.2f} s"
                                     f"  {attempt.error or ''}".rstrip()), highlight=False)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from orchestrator.store import Announced, open_reader, open_store

    settings = _settings(args)

    async def cancel() -> Any:
        # A queued job is cancelled right here: its webhook notification is written here too.
        async with open_store(settings.database, announced=Announced.of(settings.notify), upgrade=False) as store:
            async with open_reader(settings.database) as reader:
                job = await reader.resolve(args.job)
            return await store.request_cancel(job.id, clock.now())

    job = asyncio.run(cancel())
    if job.state is JobState.CANCELLED:
        print(f"{job.id}: cancelled")
    elif job.cancel_requested:
        print(f"{job.id}: cancel requested ({job.state.value}); the daemon cancels it on the API and records the end")
    else:
        print(f"{job.id}: nothing to cancel ({job.state.value})")
    return 0


def _retry(args: argparse.Namespace) -> int:
    from orchestrator.jobs import new_installation_id
    from orchestrator.store import open_reader, open_store

    settings = _settings(args)

    async def retry() -> Any:
        async with open_reader(settings.database) as reader:
            original = await reader.resolve(args.job)
        async with open_store(settings.database, upgrade=False) as store:
            # The daemon's own tag, so the new tuned-model id is derived exactly as the intake derives one.
            installation_id = settings.daemon.installation_id or await store.get_or_set_meta(
                "installation_id", new_installation_id()
            )
            return await store.retry_job(original.id, clock.now(), installation_id)

    job = asyncio.run(retry())
    print(f"{job.retry_of}: retried as job {job.id} (tuned model {job.tuned_model_name}, job key {job.job_key}); "
          "queued: the daemon submits it when a slot is free")
    return 0


def _watch(args: argparse.Namespace) -> int:
    from orchestrator.status.watch import watch
    from orchestrator.store import open_reader

    settings = _settings(args)
    labels = _labels(args.label)

    async def run() -> None:
        async with open_reader(settings.database) as reader:
            await watch(lambda also: reader.active_jobs(also, labels), Console(), asyncio.sleep, args.interval,
                        clock.now)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    return 0


def _plot(args: argparse.Namespace) -> int:
    from orchestrator.status.plot import plot_loss

    settings = _settings(args)

    detail = _read(settings, lambda reader: reader.detail(args.job))
    path = plot_loss(detail, args.output)
    print(f"{detail.job.id}: loss curve of {len(detail.snapshots)} steps written to {path}")
    return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` or ``2w`` as a timedelta (argparse type)."""
    number, unit = text[:-1], text[-1:].lower()
    if unit not in _UNITS or not number.isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a whole number and a unit: s (seconds), m (minutes), h (hours), d (days) "
            "or w (weeks), e.g. 30d"
        )
    return timedelta(seconds=int(number) * _UNITS[unit])


def _prune(args: argparse.Namespace) -> int:
    from orchestrator.intake import accepted_files
    from orchestrator.report import age
    from orchestrator.store import open_store

    settings = _settings(args)
    now = clock.now()

    async def prune() -> tuple[Any, list[Path]]:
        # The same ``now`` twice selects the same jobs (a finished job's finished_at never moves). Their
        # files in spool/accepted/ go first: a crash in between leaves rows without files, never
        # files that no later prune can find.
        async with open_store(settings.database, upgrade=False) as store:
            doomed = await store.prune(args.older_than, now, dry_run=True)
            files = accepted_files(settings.spool.path, doomed.job_ids)
            if args.dry_run:
                return doomed, files
            for path in files:
                path.unlink(missing_ok=True)
            return await store.prune(args.older_than, now), files

    result, files = asyncio.run(prune())
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "older_than_seconds": args.older_than.total_seconds(),
                          "jobs": list(result.job_ids), "events": result.events, "snapshots": result.snapshots,
                          "files": [str(path) for path in files]}, indent=2))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(result.job_ids)} jobs that ended more than {age(now - args.older_than, now)} ago, "
          f"with {result.events} events, {result.snapshots} snapshots and {len(files)} job files "
          f"from {settings.spool.path / 'accepted'}")
    shown = result.job_ids[:20]
    if shown:
        more = f" and {len(result.job_ids) - len(shown)} more" if len(result.job_ids) > len(shown) else ""
        print(f"  {' '.join(shown)}{more}")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from orchestrator.store import database_url, describe, migrate

    settings = _settings(args)
    migrate(database_url(settings.database) if settings.database.url else settings.database.path)
    print(f"{describe(settings.database)}: schema up to date")
    return 0
