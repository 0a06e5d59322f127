"""``orchestrator emulator`` / ``python -m orchestrator.emulator``: serve the emulator until stopped.

Every ``EmulatorSettings`` field becomes a ``--flag`` whose help is the field's documentation and whose
default comes from ``ORCHESTRATOR_EMULATOR_<FIELD>`` when set, so flags, environment and ``--help``
cannot drift apart.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final

from orchestrator.emulator.app import running_emulator
from orchestrator.emulator.faults import FaultPlan
from orchestrator.emulator.settings import EmulatorSettings

ENV_PREFIX: Final = "ORCHESTRATOR_EMULATOR_"


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def _strings(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _plan(text: str) -> FaultPlan:
    try:
        return FaultPlan.parse(text)
    except (ValueError, OSError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


#: Field annotation (as a string, PEP 563) → parser of a flag or environment value.
_PARSERS: Final[dict[str, Callable[[str], Any]]] = {
    "float": float,
    "int": int,
    "bool": _bool,
    "tuple[str, ...]": _strings,
    "FaultPlan": _plan,
}


def env_name(field: str) -> str:
    """``step_seconds`` → ``ORCHESTRATOR_EMULATOR_STEP_SECONDS``."""
    return ENV_PREFIX + field.upper()


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The argument parser, with defaults taken from ``environ`` where set."""
    parser = argparse.ArgumentParser(
        prog="orchestrator emulator",
        description="Serve the tuning emulator on one port: the Gemini API (tunedModels on v1beta, v1beta3, v1alpha; "
        "operations on v1/v1beta), Vertex AI (tuningJobs create/get/list/cancel and the TensorBoard loss chain on "
        "/v1 and /v1beta1), Cloud Storage's JSON API (/upload/storage/v1, /storage/v1, /download/storage/v1; point "
        "clients at it with STORAGE_EMULATOR_HOST), an OAuth token endpoint (POST /token) and /_emulator/ "
        "introspection. Every option can also be set with the environment variable shown.",
    )
    parser.add_argument(
        "--host",
        default=environ.get(env_name("host"), "127.0.0.1"),
        help=f"interface to bind [{env_name('host')}]",
    )
    port_text = environ.get(env_name("port"), "8765")
    if not port_text.isdigit():
        parser.error(f"{env_name('port')}: not a port number: {port_text!r}")
    parser.add_argument(
        "--port",
        type=int,
        default=int(port_text),
        help=f"TCP port (0 = any free port) [{env_name('port')}]",
    )
    defaults = EmulatorSettings()
    for field in dataclasses.fields(EmulatorSettings):
        convert = _PARSERS[str(field.type)]
        default = getattr(defaults, field.name)
        raw = environ.get(env_name(field.name))
        if raw is not None:
            try:
                default = convert(raw)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                parser.error(f"{env_name(field.name)}: {exc}")
        shown = default
        if isinstance(default, FaultPlan):
            shown = "none" if not default.rules else f"{len(default.rules)} rule(s)"
        elif isinstance(default, tuple):
            shown = f"{len(default)} configured" if default else "none"
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=convert,
            default=default,
            metavar=field.name.upper() if str(field.type) != "bool" else "BOOL",
            help=f"{field.metadata['help']} [{env_name(field.name)}] (default: {shown})",
        )
    return parser


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    """The settings named by parsed arguments."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(EmulatorSettings)}
    return EmulatorSettings(**values)


async def serve(settings: EmulatorSettings, host: str, port: int, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), printing the base URL once listening."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_emulator(settings, host=host, port=port) as url:
            print(f"emulator listening on {url}", flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), serve, return the exit status."""
    parser = build_parser(os.environ)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(settings, args.host, args.port))
    except OSError as exc:
        print(f"emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
