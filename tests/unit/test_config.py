"""Settings: the shipped config file, the environment naming rule, and errors that name the key."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from orchestrator.config import Settings, load_settings, with_overrides
from orchestrator.errors import ConfigError

SHIPPED = Path(__file__).parents[2] / "config" / "orchestrator.toml"


def _uncommented(text: str) -> str:
    """The shipped file with its commented-out ``# key = value`` lines switched on."""
    return re.sub(r"^# (\w+ = .*)$", r"\1", text, flags=re.MULTILINE)


def test_shipped_config_documents_every_key_at_its_default(tmp_path: Path) -> None:
    """config/orchestrator.toml names every setting, and each commented value is the real default."""
    enabled = tmp_path / "orchestrator.toml"
    enabled.write_text(_uncommented(SHIPPED.read_text()))
    documented = tomllib.loads(enabled.read_text())
    defaults = Settings()

    expected = {
        section.name: {f.name for f in fields(getattr(defaults, section.name))} for section in fields(Settings)
    }
    assert {name: set(values) for name, values in documented.items()} == expected
    loaded = load_settings(enabled, environ={})
    for section in fields(Settings):
        for key in expected[section.name]:
            value, default = getattr(getattr(loaded, section.name), key), getattr(getattr(defaults, section.name), key)
            if isinstance(default, Path):
                assert value == tmp_path / default
            else:
                assert value == default, f"{section.name}.{key}"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """``ORCHESTRATOR_<SECTION>_<KEY>`` beats the file, with the string parsed to the field's type."""
    path = tmp_path / "o.toml"
    path.write_text('[api]\nbase_url = "http://127.0.0.1:1"\n[scheduler]\nmax_active_jobs = 2\n')

    settings = load_settings(path, environ={"ORCHESTRATOR_SCHEDULER_MAX_ACTIVE_JOBS": "9",
                                            "ORCHESTRATOR_SPOOL_WATCH": "false"})

    assert settings.api.base_url == "http://127.0.0.1:1"
    assert settings.scheduler.max_active_jobs == 9
    assert settings.spool.watch is False


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[api]\nbase_ur = 'x'\n", "api.base_ur", "unknown key"),
        ("[apis]\n", "apis", "unknown section"),
        ("[api]\nauth = 'password'\n", "api.auth", "must be one of"),
        ("[scheduler]\nmax_active_jobs = 'four'\n", "scheduler.max_active_jobs", "must be an integer"),
        ("[scheduler]\nmax_active_jobs = 1.5\n", "scheduler.max_active_jobs", "must be an integer"),
        ("[scheduler]\npoll_min_interval = -1\n", "scheduler.poll_min_interval", "must not be negative"),
        ("[spool]\nwatch = 'yes please'\n", "spool.watch", "true or false"),
        ("[api\n", "line 1, column 5", "not valid TOML"),
        ("[api]\nbackend = 'openai'\n", "api.backend", "must be one of"),
        ("[api]\nbackend = 'vertex'\n", "vertex.project", "is required"),
        ("[api]\nbackend = 'vertex'\nauth = 'api_key'\n[vertex]\nproject = 'my-project'\n", "api.auth",
         "takes no API key"),
        ("[api]\nbackend = 'vertex'\n[vertex]\nproject = 'My Project'\n", "vertex.project", "project id"),
        ("[api]\nbackend = 'vertex'\n[vertex]\nproject = 'my-project'\n", "vertex.staging_uri", "is required"),
        ("[api]\nbackend = 'vertex'\n[vertex]\nproject = 'my-project'\nstaging_uri = 's3://bucket/x'\n",
         "vertex.staging_uri", "gs://BUCKET"),
        ("[api]\nbackend = 'vertex'\n[vertex]\nproject = 'my-project'\nlocation = 'US Central'\n"
         "staging_uri = 'gs://bucket'\n", "vertex.location", "region"),
        ("[api]\nbackend = 'vertex'\n[vertex]\nproject = 'my-project'\nstaging_uri = 'gs://bucket'\n"
         "storage_url = 'storage.googleapis.com'\n", "vertex.storage_url", "http(s) URL"),
        ("[vertex]\nprice_per_million_tokens = -2\n", "vertex.price_per_million_tokens", "must not be negative"),
        ("[api]\nbackend = 'vertex'\n[vertex]\nproject = 'my-project'\nstaging_uri = 'gs://bucket'\n"
         "list_settle_seconds = 10\n", "vertex.list_settle_seconds", "at least [api] timeout"),
        ("[api]\nbackend = 'vertex'\n[vertex]\nproject = 'my-project'\nstaging_uri = 'gs://bucket'\n"
         "base_model = 'models/gemini-1.5-flash-001-tuning'\n", "vertex.base_model", "Gemini API model name"),
        ("[api]\nbackend = 'vertex'\n[vertex]\nproject = 'my-project'\nstaging_uri = 'gs://bucket'\n"
         "base_model = 'gemini-2.5-flsh'\n", "vertex.base_model", "not a stable Gemini text model"),
        ("[database]\nurl = 'mysql://me:hunter2hunter2@db/x'\n", "database.url", "must be a postgresql:// URL"),
        ("[database]\nurl = 'db.internal:5432'\n", "database.url", "is not a database URL"),
        ("[database]\nurl = 'postgresql://me@db.internal'\n", "database.url", "names no database"),
    ],
)
def test_a_wrong_key_or_value_names_the_key_and_the_file(tmp_path: Path, text: str, key: str, problem: str) -> None:
    """Typos never fall back to a default silently."""
    path = tmp_path / "bad.toml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})

    assert caught.value.key == key
    assert str(path) in str(caught.value)
    assert problem in caught.value.problem
    assert "hunter2" not in str(caught.value)  # a database URL's password is never repeated


def test_a_bad_environment_value_names_the_variable() -> None:
    """The source of a bad value is the variable, so the user knows where to look."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"ORCHESTRATOR_API_TIMEOUT": "soon"})

    assert "ORCHESTRATOR_API_TIMEOUT" in str(caught.value)


def test_command_line_overrides_are_checked_like_the_file() -> None:
    """Flags go through the same validation; None means the flag was not given."""
    settings = with_overrides(Settings(), api={"auth": "api_key", "base_url": None})

    assert settings.api.auth == "api_key" and settings.api.base_url == "emulator"
    with pytest.raises(ConfigError):
        with_overrides(Settings(), api={"auth": "nope"})


def test_the_vertex_backend_reads_its_section(tmp_path: Path) -> None:
    """The issue's keys, as written in its example; an API key for Vertex is refused from any source."""
    path = tmp_path / "o.toml"
    path.write_text(
        '[api]\nbackend = "vertex"\nbase_url = "https://us-central1-aiplatform.googleapis.com"\nauth = "adc"\n'
        '[vertex]\nproject = "my-project"\nlocation = "us-central1"\nstaging_uri = "gs://my-bucket/orchestrator"\n'
        'storage_url = "https://storage.googleapis.com"\nbase_model = "gemini-2.5-flash"\n'
        'price_per_million_tokens = 3\n'
    )

    settings = load_settings(path, environ={})

    assert settings.api.backend == "vertex"
    assert settings.vertex.project == "my-project" and settings.vertex.location == "us-central1"
    assert settings.vertex.staging_uri == "gs://my-bucket/orchestrator"
    assert settings.vertex.storage_url == "https://storage.googleapis.com"
    assert settings.vertex.base_model == "gemini-2.5-flash"
    assert settings.vertex.price_per_million_tokens == 3.0
    with pytest.raises(ConfigError) as from_env:
        load_settings(path, environ={"ORCHESTRATOR_API_AUTH": "api_key"})
    assert from_env.value.key == "api.auth"
    with pytest.raises(ConfigError) as from_flag:
        with_overrides(settings, api={"auth": "api_key"})
    assert from_flag.value.key == "api.auth" and from_flag.value.source == "command line"


def test_the_vertex_section_is_ignored_by_the_gemini_backend() -> None:
    """An incomplete [vertex] section does not stop a Gemini daemon."""
    settings = load_settings(None, environ={"ORCHESTRATOR_VERTEX_STAGING_URI": "not checked"})

    assert settings.api.backend == "gemini" and settings.vertex.staging_uri == "not checked"


def test_variables_that_are_not_settings_by_design_are_allowed() -> None:
    """The config file's path, and the ``orchestrator emulator`` command's own variables."""
    settings = load_settings(None, environ={"ORCHESTRATOR_CONFIG": "x.toml", "ORCHESTRATOR_EMULATOR_PORT": "9000",
                                            "ORCHESTRATOR_EMULATOR_FAULTS": "[]", "ORCHESTRATOR_API_TIMEOUT": "3"})

    assert settings.api.timeout == 3.0


@pytest.mark.parametrize("name", ["ORCHESTRATOR_SCHEDULER_MAX_ACTIV_JOBS", "ORCHESTRATOR_EMULATOR_TIME_SCLAE",
                                  "ORCHESTRATOR_NONSENSE"])
def test_an_environment_variable_naming_no_setting_is_an_error(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={name: "1"})

    assert caught.value.source == f"environment {name}"
    assert "names no setting" in caught.value.problem


@pytest.mark.parametrize(
    ("overrides", "key"),
    [({"scheduler": {"poll_min_interval": 120.0}}, "scheduler.poll_min_interval"),
     ({"emulator": {"time_scale": 0.0}}, "emulator.time_scale")],
)
def test_command_line_overrides_meet_the_same_bounds(overrides: dict[str, dict[str, float]], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        with_overrides(Settings(), **overrides)

    assert caught.value.key == key and caught.value.source == "command line"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"ORCHESTRATOR_API_AUTH": "api_key", "ORCHESTRATOR_API_BASE_URL": "http://example.com"}, "api.base_url"),
        ({"ORCHESTRATOR_API_AUTH": "adc", "ORCHESTRATOR_API_BASE_URL": "http://10.1.2.3:80"}, "api.base_url"),
        ({"ORCHESTRATOR_API_AUTH": "adc", "ORCHESTRATOR_VERTEX_STORAGE_URL": "http://storage.example"},
         "vertex.storage_url"),
    ],
)
def test_credentials_over_plain_http_to_another_host_are_refused(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ=environ)
    assert info.value.key == key and "plain http://" in info.value.problem


def test_credentials_over_https_or_to_this_machine_are_fine() -> None:
    for url in ("https://generativelanguage.googleapis.com", "http://127.0.0.1:8080", "http://localhost:1"):
        settings = load_settings(None, environ={"ORCHESTRATOR_API_AUTH": "api_key", "ORCHESTRATOR_API_BASE_URL": url})
        assert settings.api.base_url == url
    assert load_settings(None, environ={"ORCHESTRATOR_API_BASE_URL": "http://example.com"}).api.auth == "none"


def test_auto_retry_is_off_by_default_and_never_negative() -> None:
    assert load_settings(None, environ={}).scheduler.auto_retry == 0
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"ORCHESTRATOR_SCHEDULER_AUTO_RETRY": "-1"})
    assert "scheduler.auto_retry" in str(caught.value) and "ORCHESTRATOR_SCHEDULER_AUTO_RETRY" in str(caught.value)
