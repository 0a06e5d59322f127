"""Settings: one TOML file, every key overridable by an environment variable.

The naming rule: the key ``[section] name`` is also read from ``ORCHESTRATOR_SECTION_NAME``
(upper case), e.g. ``[api] base_url`` ← ``ORCHESTRATOR_API_BASE_URL``. The environment wins over
the file; CLI flags win over both. A key we do not know, or a value of the wrong type or range, is
a :class:`ConfigError` that names the key and where it came from, so a typo never silently falls
back to a default.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
import typing
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import ConfigError
from orchestrator.spec import DEFAULT_MAX_FILE_BYTES
from orchestrator.vertex.jobfile import base_model_problem

ENV_PREFIX = "ORCHESTRATOR_"
#: ``ORCHESTRATOR_*`` variables that are not settings by design: the config file's path. (The
#: ``orchestrator emulator`` command's own ``ORCHESTRATOR_EMULATOR_*`` variables are allowed too.)
NOT_SETTINGS = frozenset({"ORCHESTRATOR_CONFIG"})
EMULATOR_COMMAND_PREFIX = "ORCHESTRATOR_EMULATOR_"

#: Keys whose value must be above zero: at 0 they would divide by zero, spin, or never act.
MUST_BE_POSITIVE = frozenset({
    "spool.rescan_interval", "spool.max_file_bytes", "api.timeout", "scheduler.poll_min_interval",
    "scheduler.poll_max_interval", "scheduler.backoff_base", "scheduler.backoff_cap", "scheduler.lease_seconds",
    "emulator.step_seconds", "emulator.time_scale", "status.max_tick_age", "status.max_write_age",
})
#: Inclusive upper bounds.
MAXIMUM = {"status.port": 65535}
#: ``[api] base_url`` value that makes the daemon start the built-in emulator in-process.
EMBEDDED_EMULATOR = "emulator"

AuthMode = Literal["none", "api_key", "adc"]
Backend = Literal["gemini", "vertex"]
LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]
#: Job endings (and beginnings) a webhook can announce: ``running`` and the terminal states.
NotifyEvent = Literal["running", "succeeded", "failed", "cancelled"]
WebhookFormat = Literal["standard", "slack"]


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """Process-wide behaviour."""

    #: Short lowercase tag mixed into every tuned-model id we derive, so two installations (or two
    #: users of one project) never pick the same id. Empty: generated once and kept in the database.
    installation_id: str = ""
    log_level: LogLevel = "info"
    #: ``auto`` is readable console output on a TTY and JSON lines otherwise.
    log_format: LogFormat = "auto"
    #: Seconds a graceful stop waits for in-flight requests before abandoning them (they are safe to
    #: abandon: every step is committed before its side effect and repeated idempotently on restart).
    shutdown_grace: float = 5.0


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    """The folder tree users drop job files into."""

    path: Path = Path("spool")
    #: Seconds between full rescans of the inbox; file events only wake the daemon early.
    rescan_interval: float = 5.0
    #: Files larger than this are rejected unread.
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    #: Use inotify (watchfiles) to notice new files at once; the rescan still guarantees correctness.
    watch: bool = True
    #: A file that is not valid yet and was modified less than this many seconds ago is taken to be
    #: still being written, and looked at again later instead of being rejected.
    settle_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The status database: a SQLite file (``path``, the default), or a PostgreSQL server (``url``)."""

    path: Path = Path("orchestrator.db")
    #: A SQLAlchemy URL such as ``postgresql://orchestrator@db.internal/orchestrator``: when set, the
    #: job queue and status live on that PostgreSQL server (several daemons may share it) and ``path``
    #: is not used. The password may be in the URL, in ``~/.pgpass`` or in ``PGPASSWORD``; it is never logged.
    url: str = ""
    #: Seconds a connection waits for a lock before failing with "database is locked".
    busy_timeout: float = 10.0
    #: Checkpoint (TRUNCATE) the WAL when it grows past this many bytes.
    wal_checkpoint_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """How to reach the tuning service (or the emulator)."""

    #: The tuning service: ``gemini`` (the Gemini API's ``tunedModels``) or ``vertex`` (Vertex AI
    #: ``tuningJobs``, configured in ``[vertex]``).
    backend: Backend = "gemini"
    #: ``emulator`` starts the built-in emulator on a free loopback port; otherwise a URL such as
    #: ``https://generativelanguage.googleapis.com``.
    base_url: str = EMBEDDED_EMULATOR
    #: ``none`` (emulator), ``api_key`` (read from the environment variable ``api_key_env``, sent as
    #: ``x-goog-api-key``) or ``adc`` (google-auth application default credentials).
    auth: AuthMode = "none"
    api_key_env: str = "GEMINI_API_KEY"
    #: Sent as ``x-goog-user-project`` with ADC user credentials (the quota project).
    quota_project: str = ""
    #: Seconds for one HTTP request, connect to last byte.
    timeout: float = 30.0
    #: Requests in flight at once, across all jobs; 0 means no cap.
    max_in_flight: int = 16
    #: Requests per second across all calls; 0 means no limit.
    requests_per_second: float = 50.0


#: ``[vertex] staging_uri``: a bucket and an optional folder, ``gs://bucket`` or ``gs://bucket/prefix``.
STAGING_URI = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](/[^\s?#]*)?")
#: ``[vertex] project``: a project id (letter first) or a project number.
VERTEX_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20}")
#: ``[vertex] location``: a region such as ``us-central1``.
VERTEX_LOCATION = re.compile(r"[a-z][a-z0-9-]{1,62}")


@dataclass(frozen=True, slots=True)
class VertexSettings:
    """Vertex AI tuning, used when ``[api] backend = "vertex"``."""

    #: The Google Cloud project id (or number) that runs the tuning jobs.
    project: str = ""
    #: The region of the tuning jobs, e.g. ``us-central1`` (the API host is ``{location}-aiplatform``).
    location: str = "us-central1"
    #: Where the daemon uploads training data: ``gs://bucket`` or ``gs://bucket/prefix``.
    staging_uri: str = ""
    #: The Cloud Storage JSON API; empty is Google's (``https://storage.googleapis.com``) when
    #: ``[api] base_url`` is Google's, else the same URL as the API (an emulator serves both).
    storage_url: str = ""
    #: The Vertex base model that tutorial-format job files (Gemini API ``base_model``) are tuned on,
    #: e.g. ``gemini-2.5-flash``; empty: such files are rejected with a message naming this key.
    base_model: str = ""
    #: Your price per million billable training tokens, for the estimated cost shown by ``status``
    #: and ``show`` (tokens x epochs x price). Not read from Google: 0 shows no estimate.
    price_per_million_tokens: float = 0.0
    #: Seconds after a create whose answer was lost (timeout, 5xx, dropped connection, crash) during
    #: which the daemon only looks for it by its label, and does not create the job again: longer
    #: than ``[api] timeout`` plus the time a new tuning job can take to appear in list answers.
    list_settle_seconds: float = 90.0


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """When and how often jobs are submitted and polled."""

    #: Remote jobs (submitting, running, cancelling) at once: the project's tuning quota.
    max_active_jobs: int = 4
    #: Bounds on the time between two polls of one running operation, in seconds.
    poll_min_interval: float = 5.0
    poll_max_interval: float = 60.0
    #: Exponential back-off after an error: base and cap, in seconds (full jitter).
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    #: Seconds a step (one submit, one poll) is leased to this process.
    lease_seconds: float = 60.0
    #: A running job with no new step for this many seconds is cancelled and failed; 0 disables.
    stall_timeout: float = 0.0
    #: A job running longer than this many seconds is cancelled and failed; 0 disables.
    max_run_time: float = 0.0
    #: Delete the tuned model of a cancelled job (the API's advice for cancelled tunings).
    delete_cancelled_models: bool = False
    #: Attempts made automatically, as ``orchestrator retry`` would, for a job whose tuning failed with
    #: an error the API calls retryable (``policy.RETRYABLE_FAILURE_CODES``); 0 (the default): none.
    auto_retry: int = 0


@dataclass(frozen=True, slots=True)
class EmulatorSettingsSection:
    """The built-in emulator, used when ``[api] base_url = "emulator"``."""

    #: Simulated seconds per training step.
    step_seconds: float = 2.0
    #: Simulated seconds per real second (10 runs ten times faster).
    time_scale: float = 1.0
    #: Seed of the simulated loss curves and generated ids.
    seed: int = 0


@dataclass(frozen=True, slots=True)
class StatusSettings:
    """The HTTP status endpoint (``/healthz``, ``/readyz``, ``/metrics``, ``/jobs``)."""

    #: Off by default: a daemon needs no open port to do its work.
    enabled: bool = False
    #: Loopback by default; ``0.0.0.0`` inside a container so that its published port reaches it.
    host: str = "127.0.0.1"
    #: TCP port; 0 picks a free one (logged at start-up).
    port: int = 8780
    #: ``/healthz`` fails when the scheduler loop has not ticked for this many seconds (it ticks at
    #: least once a second while alive).
    max_tick_age: float = 30.0
    #: ``/healthz`` fails when no database write has succeeded for this many seconds. Every tick
    #: writes while work can be claimed; a credentials pause stops that for up to
    #: ``scheduler.backoff_cap`` seconds, so keep this above it.
    max_write_age: float = 600.0
    #: Most connections served at once; more are answered 503 and closed at once, so that idle sockets
    #: cannot use up the daemon's file descriptors (keep it well below ``LimitNOFILE``).
    max_connections: int = 64
    #: A file holding a bearer token (e.g. a systemd credential or a Docker secret, readable by the
    #: daemon alone). When set, every route but ``/healthz`` requires ``Authorization: Bearer TOKEN``;
    #: empty: no token (fine on loopback; set one when the port is reachable from other hosts).
    token_file: str = ""
    #: ``/readyz`` fails when every API request for this many seconds got no answer (refused, DNS,
    #: TLS, timeout, or a gateway's 502/503/504); 0 never fails readiness for that.
    max_api_unreachable: float = 120.0


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Webhooks announcing job endings, written to an outbox with the state change, sent at least once."""

    #: Where notifications are POSTed; empty: no webhooks. A Slack incoming-webhook URL is itself a
    #: secret: give it through ``ORCHESTRATOR_NOTIFY_WEBHOOK_URL`` rather than a file others can read.
    webhook_url: str = ""
    #: The *name* of the environment variable that holds the signing secret (``whsec_`` + base64, as
    #: Standard Webhooks defines it). Required for ``format = "standard"``; the secret itself never
    #: belongs in a config file.
    webhook_secret_env: str = ""
    #: Which state changes are announced (``job.<state>`` events).
    events: tuple[NotifyEvent, ...] = ("succeeded", "failed", "cancelled")
    #: ``standard``: the Standard Webhooks JSON payload; ``slack``: a ``{"text": ...}`` message.
    format: WebhookFormat = "standard"
    #: Seconds for one delivery attempt, connect to last byte.
    timeout: float = 10.0
    #: Exponential back-off between attempts of one notification: first delay and cap, in seconds.
    backoff_min: float = 5.0
    backoff_max: float = 3600.0
    #: A notification not delivered this many seconds after the ending it announces is given up.
    give_up_after: float = 3 * 86400.0
    #: Deliveries in flight at once.
    max_in_flight: int = 4


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings, one frozen section per part of the daemon."""

    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    emulator: EmulatorSettingsSection = field(default_factory=EmulatorSettingsSection)
    status: StatusSettings = field(default_factory=StatusSettings)
    vertex: VertexSettings = field(default_factory=VertexSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (when given) and the environment into validated settings.

    Relative paths in the file are resolved against the file's folder, so a config works from any
    working directory.
    """
    environ = os.environ if environ is None else environ
    check_environment(environ)
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        raw = _read_toml(path)
    base_dir = path.parent if path is not None else Path.cwd()
    sections: dict[str, Any] = {}
    section_types = _field_types(Settings)
    for section in fields(Settings):
        section_cls = section_types[section.name]
        file_values = raw.pop(section.name, {})
        if not isinstance(file_values, dict):
            raise ConfigError(source, section.name, "must be a table")
        values = _section_values(section.name, section_cls, file_values, source, environ, base_dir)
        sections[section.name] = section_cls(**values)
    for unknown in raw:
        raise ConfigError(source, unknown, f"unknown section (known: {', '.join(f.name for f in fields(Settings))})")
    # Keys that span sections are checked once all are read, each named with where its value came from.
    settings = Settings(**sections)
    return check_settings(settings, _origins(source, environ))


def with_overrides(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """Settings with some keys replaced, e.g. from CLI flags: ``with_overrides(s, api={"auth": "none"})``."""
    changed = {}
    for name, values in sections.items():
        section = getattr(settings, name)
        checked = {key: _coerce(f"{name}.{key}", _field_types(type(section))[key], value, "command line")
                   for key, value in values.items() if value is not None}
        changed[name] = replace(section, **checked)
    origins = {f"{name}.{key}": "command line" for name, values in sections.items()
               for key, value in values.items() if value is not None}
    return check_settings(replace(settings, **changed), origins)


def check_environment(environ: Mapping[str, str]) -> None:
    """An ``ORCHESTRATOR_*`` variable that names no setting is an error naming the closest one.

    A typo (``ORCHESTRATOR_SCHEDULER_MAX_ACTIV_JOBS``) would otherwise silently leave the default
    in force. :data:`NOT_SETTINGS` and the emulator command's variables are not settings by design.
    """
    known = {_env_name(key): key for key in _all_keys()}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name in NOT_SETTINGS:
            continue
        if name.startswith(EMULATOR_COMMAND_PREFIX) and name in _emulator_command_variables():
            continue
        closest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        section, _, key = known[closest[0]].partition(".") if closest else ("", "", "")
        hint = f"did you mean {closest[0]} ([{section}] {key})?" if closest else (
            "settings are ORCHESTRATOR_<SECTION>_<KEY>, as listed in config/orchestrator.toml")
        raise ConfigError(f"environment {name}", "", f"names no setting; {hint}")


def sends_credentials_in_clear(url: str) -> bool:
    """Whether ``url`` is plain ``http://`` to a host other than this machine (loopback is fine)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it could resolve anywhere
        return True


def check_settings(settings: Settings, origins: Mapping[str, str]) -> Settings:
    """The rules that span keys, each error naming a key and where its value came from (``origins``).

    Bounds that contradict each other (a minimum above its maximum, a stall timeout shorter than the
    longest wait between two polls, a health limit below a pause the daemon takes on purpose), and
    the ``[vertex]`` section when the backend is Vertex. Checked once at start-up, so a mistake is one
    line naming the key instead of a failed job later. Credentials never travel in clear text: with
    ``api.auth`` other than ``none``, every URL they go to must be ``https://`` unless it names this
    machine (an emulator, a local proxy).
    """
    scheduler, status = settings.scheduler, settings.status
    _at_most(origins, "scheduler.poll_min_interval", scheduler.poll_min_interval,
             "scheduler.poll_max_interval", scheduler.poll_max_interval)
    _at_most(origins, "scheduler.backoff_base", scheduler.backoff_base, "scheduler.backoff_cap", scheduler.backoff_cap)
    if scheduler.stall_timeout:
        _at_most(origins, "scheduler.poll_max_interval", scheduler.poll_max_interval,
                 "scheduler.stall_timeout", scheduler.stall_timeout,
                 "(a job would stall between two polls; or set stall_timeout = 0 to disable the check)")
    _at_most(origins, "scheduler.backoff_cap", scheduler.backoff_cap, "status.max_write_age", status.max_write_age,
             "(a daemon pausing for backoff_cap writes nothing, and /healthz would call it dead)")
    if scheduler.auto_retry < 0:
        raise _invalid(origins, "scheduler.auto_retry", f"must be 0 (off) or more, not {scheduler.auto_retry}")
    if status.max_connections < 1:
        raise _invalid(origins, "status.max_connections", f"must be at least 1, not {status.max_connections}")
    if settings.api.auth != "none":
        for key, url in (("api.base_url", settings.api.base_url), ("vertex.storage_url", settings.vertex.storage_url)):
            if sends_credentials_in_clear(url):
                raise _invalid(origins, key, f"{url!r} is plain http:// to another host, and api.auth = "
                               f"{settings.api.auth!r} would send the credentials unencrypted: use https://")
    if settings.database.url:
        _check_database_url(settings.database.url, _origin(origins, "database.url"))
    if settings.api.backend != "vertex":
        return settings
    vertex = settings.vertex
    if settings.api.auth == "api_key":
        raise _invalid(origins, "api.auth", "Vertex AI takes no API key: use 'adc' (a service account or gcloud "
                          "application default credentials), or 'none' for the emulator")
    required = 'is required with [api] backend = "vertex"'
    if not VERTEX_PROJECT.fullmatch(vertex.project):
        problem = f"must be a Google Cloud project id or number, not {vertex.project!r}"
        raise _invalid(origins, "vertex.project", problem if vertex.project else required)
    if not VERTEX_LOCATION.fullmatch(vertex.location):
        raise _invalid(origins, "vertex.location", f"must be a region such as 'us-central1', not {vertex.location!r}")
    if not STAGING_URI.fullmatch(vertex.staging_uri):
        problem = f"must be gs://BUCKET or gs://BUCKET/PREFIX, not {vertex.staging_uri!r}"
        raise _invalid(origins, "vertex.staging_uri", problem if vertex.staging_uri else
                       f"{required}: the gs://BUCKET/PREFIX the daemon uploads training data to")
    if vertex.list_settle_seconds < settings.api.timeout:
        raise _invalid(origins, "vertex.list_settle_seconds", f"must be at least [api] timeout "
                       f"({settings.api.timeout:g} s): a create still in flight must not be sent again, "
                       f"got {vertex.list_settle_seconds:g}")
    if vertex.storage_url and not vertex.storage_url.startswith(("http://", "https://")):
        raise _invalid(origins, "vertex.storage_url", f"must be an http(s) URL, not {vertex.storage_url!r}")
    if vertex.base_model and (unusable := base_model_problem(vertex.base_model)) is not None:
        raise _invalid(origins, "vertex.base_model", f"{vertex.base_model!r} {unusable}")
    return settings


def _at_most(origins: Mapping[str, str], low_key: str, low: float, high_key: str, high: float, why: str = "") -> None:
    """``low_key`` may not exceed ``high_key``; the error names both and where each value came from."""
    if low > high:
        problem = f"{low:g} is above {high_key} ({high:g}, from {_origin(origins, high_key)})"
        raise ConfigError(_origin(origins, low_key), low_key, f"{problem} {why}".strip())


def _origin(origins: Mapping[str, str], key: str) -> str:
    return origins.get(key, "defaults")


def _invalid(origins: Mapping[str, str], key: str, problem: str) -> ConfigError:
    """The error for ``key``, naming where its value came from."""
    return ConfigError(_origin(origins, key), key, problem)


def _origins(source: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Where each key's value came from: ``environment ORCHESTRATOR_…`` or the file (absent: a default)."""
    origins = {}
    for key in _all_keys():
        if _env_name(key) in environ:
            origins[key] = f"environment {_env_name(key)}"
        elif source != "defaults":
            origins[key] = source
    return origins


def _all_keys() -> list[str]:
    """Every setting as ``section.key``."""
    types = _field_types(Settings)
    return [f"{section.name}.{key}" for section in fields(Settings) for key in _field_types(types[section.name])]


def _env_name(key: str) -> str:
    """``scheduler.max_active_jobs`` → ``ORCHESTRATOR_SCHEDULER_MAX_ACTIVE_JOBS``."""
    return f"{ENV_PREFIX}{key.replace('.', '_')}".upper()


def _emulator_command_variables() -> set[str]:
    """The variables ``orchestrator emulator`` reads (imported only when such a variable is set)."""
    from orchestrator.emulator.cli import env_name
    from orchestrator.emulator.settings import EmulatorSettings

    return {env_name(name) for name in ("host", "port", *(f.name for f in fields(EmulatorSettings)))}


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's tables; a missing, unreadable or malformed file is one line (with the line and column)."""
    source = str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's message ends "(at line L, column C)"; the place goes where a key would.
        message = str(exc)
        place = re.search(r" \(at line (\d+), column (\d+)\)$", message)
        if place is None:
            raise ConfigError(source, "", f"not valid TOML: {message}") from None
        where = f"line {place[1]}, column {place[2]}"
        raise ConfigError(source, where, f"not valid TOML: {message[: place.start()]}") from None


def _check_database_url(text: str, source: str) -> None:
    """``[database] url`` names a PostgreSQL database; the error never repeats the URL (it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError(source, "database.url", "is not a database URL: expected "
                          "postgresql://USER@HOST[:PORT]/DATABASE") from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(source, "database.url", f"must be a postgresql:// URL, not {url.drivername}:// "
                          "(for SQLite, set [database] path instead)")
    if not url.database:
        raise ConfigError(source, "database.url", "names no database: expected postgresql://USER@HOST[:PORT]/DATABASE")


def _section_values(
    name: str, cls: type, file_values: dict[str, Any], source: str, environ: Mapping[str, str], base_dir: Path
) -> dict[str, Any]:
    types_by_key = _field_types(cls)
    for key in file_values:
        if key not in types_by_key:
            raise ConfigError(source, f"{name}.{key}", f"unknown key (known: {', '.join(types_by_key)})")
    values: dict[str, Any] = {}
    for key, annotation in types_by_key.items():
        env_name = f"{ENV_PREFIX}{name}_{key}".upper()
        if env_name in environ:
            values[key] = _coerce(f"{name}.{key}", annotation, environ[env_name], f"environment {env_name}")
        elif key in file_values:
            value = _coerce(f"{name}.{key}", annotation, file_values[key], source)
            if isinstance(value, Path) and not value.is_absolute():
                value = base_dir / value
            values[key] = value
    return values


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _coerce(key: str, annotation: Any, value: Any, source: str) -> Any:
    """Check ``value`` against the field's type; strings (from the environment) are parsed."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ConfigError(source, key, f"must be one of {', '.join(map(repr, allowed))}, not {value!r}")
        return value
    if origin is tuple:
        return _coerce_tuple(key, annotation, value, source)
    if annotation is bool:
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
        if not isinstance(value, bool):
            raise ConfigError(source, key, f"must be true or false, not {value!r}")
        return value
    if annotation in (int, float):
        number = _number(key, annotation, value, source)
        if number < 0:
            raise ConfigError(source, key, f"must not be negative, got {number}")
        if number == 0 and key in MUST_BE_POSITIVE:
            raise ConfigError(source, key, "must be above 0")
        if key in MAXIMUM and number > MAXIMUM[key]:
            raise ConfigError(source, key, f"must be at most {MAXIMUM[key]}, got {number}")
        return number
    if annotation is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(source, key, f"must be a non-empty path string, not {value!r}")
        return Path(value).expanduser()
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(source, key, f"must be a string, not {value!r}")
        return value
    raise TypeError(f"no coercion for {annotation!r}")  # a programming error in the dataclasses above


def _coerce_tuple(key: str, annotation: Any, value: Any, source: str) -> tuple[Any, ...]:
    """A list of values (``tuple[X, ...]``); from the environment, comma-separated."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        raise ConfigError(source, key, f"must be a list, not {value!r}")
    item_type = typing.get_args(annotation)[0]
    return tuple(dict.fromkeys(_coerce(key, item_type, item, source) for item in value))


def _number(key: str, annotation: type, value: Any, source: str) -> int | float:
    expected = "an integer" if annotation is int else "a number"
    if isinstance(value, str):
        try:
            value = int(value) if annotation is int else float(value)
        except ValueError:
            raise ConfigError(source, key, f"must be {expected}, not {value!r}") from None
    wrong_kind = isinstance(value, bool) or not isinstance(value, int | float)
    if wrong_kind or (annotation is int and isinstance(value, float)):
        raise ConfigError(source, key, f"must be {expected}, not {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(source, key, f"must be finite, not {value!r}")
    return annotation(value)  # type: ignore[no-any-return]

