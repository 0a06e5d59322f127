"""gemini.auth: where each credential goes, that it is refreshed once, and that it never shows."""

from __future__ import annotations

import asyncio
import pickle
import threading
from pathlib import Path
from typing import Any

import google.auth
import pytest
from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError
from structlog.testing import capture_logs

from orchestrator.config import ApiSettings
from orchestrator.errors import ConfigError, TransientError, Unauthenticated
from orchestrator.gemini.auth import ADC_SCOPES, AdcAuth, ApiKeyAuth, NoAuth, auth_from_settings
from orchestrator.logs import REDACTED, scrub

KEY = "AIzaSy-test-key-0123456789"
TOKEN_PREFIX = "ya29.secret-token-"


class FakeCredentials:
    """The part of google.auth.credentials.Credentials that AdcAuth uses; refresh blocks like the real one."""

    def __init__(self, *, valid: bool = False, fail_with: Exception | None = None) -> None:
        self.token: str | None = f"{TOKEN_PREFIX}0" if valid else None
        self.valid = valid
        self.refreshes = 0
        self.fail_with = fail_with
        self.quota_project_id: str | None = None
        self.threads: set[str] = set()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def refresh(self, request: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        self.release.wait(timeout=5)
        if self.fail_with is not None:
            raise self.fail_with
        self.refreshes += 1
        self.token = f"{TOKEN_PREFIX}{self.refreshes}"
        self.valid = True


async def queued_behind_the_refresh(creds: FakeCredentials) -> None:
    """Return once one refresh is running in its thread and every other caller waits on the lock."""
    await asyncio.to_thread(creds.entered.wait, 5)
    for _ in range(5):
        await asyncio.sleep(0)


async def test_api_key_is_read_from_the_named_variable_and_sent_as_a_header() -> None:
    auth = ApiKeyAuth.from_env("MY_KEY", {"MY_KEY": f" {KEY}\n"})
    assert await auth.headers() == {"x-goog-api-key": KEY}


@pytest.mark.parametrize("environ", [{}, {"MY_KEY": ""}, {"MY_KEY": "  "}])
def test_missing_api_key_is_a_config_error_naming_the_variable(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        ApiKeyAuth.from_env("MY_KEY", environ)
    assert info.value.key == "MY_KEY" and "MY_KEY" in str(info.value)


def test_api_key_is_read_from_the_file_the_file_variable_names(tmp_path: Path) -> None:
    secret = tmp_path / "gemini-api-key"
    secret.write_text(f"{KEY}\n")
    auth = ApiKeyAuth.from_env("MY_KEY", {"MY_KEY_FILE": str(secret)})
    assert repr(auth) == "ApiKeyAuth(env_var='MY_KEY_FILE', key=<redacted>)"


async def test_api_key_file_gives_the_key_as_a_header(tmp_path: Path) -> None:
    secret = tmp_path / "gemini-api-key"
    secret.write_text(KEY)
    assert await ApiKeyAuth.from_env("MY_KEY", {"MY_KEY_FILE": str(secret)}).headers() == {"x-goog-api-key": KEY}


def test_an_unreadable_or_empty_api_key_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    for path, words in ((tmp_path / "missing", "No such file"), (tmp_path / "empty", "is empty")):
        with pytest.raises(ConfigError) as info:
            ApiKeyAuth.from_env("MY_KEY", {"MY_KEY_FILE": str(path)})
        assert info.value.key == "MY_KEY_FILE" and words in str(info.value) and str(path) in str(info.value)


def test_api_key_never_shows() -> None:
    auth = ApiKeyAuth.from_env("MY_KEY", {"MY_KEY": KEY})
    for text in (repr(auth), str(auth), f"{auth}", repr([auth])):
        assert KEY not in text
    assert repr(auth) == "ApiKeyAuth(env_var='MY_KEY', key=<redacted>)"
    assert not hasattr(auth, "__dict__")  # no vars(auth) to dump it from
    with pytest.raises(TypeError) as info:
        pickle.dumps(auth)
    assert KEY not in str(info.value)


async def test_api_key_refresh_changes_nothing() -> None:
    auth = ApiKeyAuth(KEY)
    await auth.refresh()
    assert await auth.headers() == {"x-goog-api-key": KEY}


async def test_no_auth_sends_nothing() -> None:
    auth = NoAuth()
    await auth.refresh()
    assert await auth.headers() == {}


async def test_settings_pick_the_source() -> None:
    assert isinstance(await auth_from_settings(ApiSettings(auth="none")), NoAuth)
    auth = await auth_from_settings(ApiSettings(auth="api_key", api_key_env="K"), {"K": KEY})
    assert isinstance(auth, ApiKeyAuth) and await auth.headers() == {"x-goog-api-key": KEY}


async def test_adc_refreshes_an_invalid_token_once_for_many_concurrent_callers() -> None:
    creds = FakeCredentials()
    creds.release.clear()
    auth = AdcAuth(creds, quota_project="my-project", transport=object())
    callers = [asyncio.create_task(auth.headers()) for _ in range(50)]
    await queued_behind_the_refresh(creds)
    creds.release.set()
    results = await asyncio.gather(*callers)
    assert creds.refreshes == 1
    assert all(h == {"authorization": f"Bearer {TOKEN_PREFIX}1", "x-goog-user-project": "my-project"} for h in results)
    assert threading.main_thread().name not in creds.threads  # refresh ran off the event loop


async def test_adc_refresh_after_401_runs_once_under_concurrency() -> None:
    creds = FakeCredentials(valid=True)
    auth = AdcAuth(creds, transport=object())
    creds.release.clear()
    refreshes = [asyncio.create_task(auth.refresh()) for _ in range(20)]
    await queued_behind_the_refresh(creds)
    creds.release.set()
    await asyncio.gather(*refreshes)
    assert creds.refreshes == 1
    assert await auth.headers() == {"authorization": f"Bearer {TOKEN_PREFIX}1"}
    await auth.refresh()  # a later 401 refreshes again
    assert creds.refreshes == 2


async def test_adc_uses_the_credentials_quota_project_unless_settings_name_one() -> None:
    creds = FakeCredentials(valid=True)
    creds.quota_project_id = "from-adc-file"
    assert (await AdcAuth(creds, transport=object()).headers())["x-goog-user-project"] == "from-adc-file"
    assert (await AdcAuth(creds, quota_project="p", transport=object()).headers())["x-goog-user-project"] == "p"


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (RefreshError(f"invalid_grant: token {TOKEN_PREFIX}0 revoked"), Unauthenticated),
        (TransportError(f"connection reset fetching {TOKEN_PREFIX}0"), TransientError),
    ],
)
async def test_adc_refresh_failures_are_typed_and_quote_nothing(failure: Exception, kind: type[Exception]) -> None:
    auth = AdcAuth(FakeCredentials(fail_with=failure), transport=object())
    with capture_logs() as logs, pytest.raises(kind) as info:
        await auth.headers()
    assert TOKEN_PREFIX not in str(info.value) and info.value.__cause__ is None
    assert TOKEN_PREFIX not in repr(logs)


async def test_adc_never_shows_the_token() -> None:
    creds = FakeCredentials(valid=True)
    auth = AdcAuth(creds, quota_project="p", transport=object())
    with capture_logs() as logs:
        await auth.refresh()
    assert logs == [{"event": "api_credentials_refreshed", "log_level": "info"}]
    assert TOKEN_PREFIX not in repr(auth) and TOKEN_PREFIX not in str(auth)
    assert repr(auth) == "AdcAuth(credentials=FakeCredentials, quota_project='p')"


async def test_adc_load_asks_for_the_tuning_scopes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake_default(scopes: list[str]) -> tuple[FakeCredentials, str]:
        seen.append(scopes)
        return FakeCredentials(valid=True), "project"

    monkeypatch.setattr(google.auth, "default", fake_default)
    auth = await auth_from_settings(ApiSettings(auth="adc", quota_project="q"))
    assert isinstance(auth, AdcAuth) and seen == [list(ADC_SCOPES)]
    assert (await auth.headers())["x-goog-user-project"] == "q"


async def test_adc_without_credentials_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_default(scopes: list[str]) -> None:
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_default)
    with pytest.raises(ConfigError, match="no application default credentials"):
        await AdcAuth.load()


async def test_only_the_live_token_is_kept_for_scrubbing() -> None:
    """Each refresh replaces the token to scrub; the set does not grow by one per refresh for ever."""
    creds = FakeCredentials(valid=True)
    auth = AdcAuth(creds, transport=object())
    await auth.headers()
    assert scrub(f"{TOKEN_PREFIX}0") == REDACTED
    for _ in range(3):
        await auth.refresh()
        await auth.headers()
    assert scrub(f"{TOKEN_PREFIX}3") == REDACTED
    assert [scrub(f"{TOKEN_PREFIX}{n}") for n in range(3)] == [f"{TOKEN_PREFIX}{n}" for n in range(3)]
