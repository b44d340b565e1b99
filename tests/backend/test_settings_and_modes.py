from __future__ import annotations

import pytest

from backend.domain.execution_modes import ExecutionMode, ExecutionModeSelector, NoHost
from backend.domain.hosts import HostCensus
from backend.errors import ExecutionModeUnavailableError, SettingsError
from backend.settings import load_settings


class UpHost:
    def is_available(self) -> bool:
        return True

    def has_gpu(self) -> bool:
        return True

    def census(self) -> HostCensus:
        return HostCensus(1, 1, 1, 1, 1)


def test_defaults_are_the_embedded_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.port == 8000
    assert settings.database_url == "sqlite:///./var/modelyard.db"
    assert settings.local_concurrency == 1


def test_bare_database_url_and_prefixed_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@db:5432/modelyard")
    monkeypatch.setenv("MODELYARD_PLUGIN_ALLOWLIST", "my_models, other.pkg")
    monkeypatch.setenv("MODELYARD_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.plugin_allowlist == ("my_models", "other.pkg")
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELYARD_PORT", "eighty"),
        ("MODELYARD_LOCAL_CONCURRENCY", "0"),
        ("MODELYARD_DEFAULT_EXECUTION_MODE", "cloud"),
        ("MODELYARD_PROGRESS_WRITE_INTERVAL_S", "-1"),
    ],
)
def test_a_bad_setting_names_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_an_unknown_database_scheme_names_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings()


def test_auto_without_gpu_requirement_runs_locally() -> None:
    decision = ExecutionModeSelector(ExecutionMode.AUTO, UpHost()).select(None, require_gpu=False)
    assert decision.mode is ExecutionMode.LOCAL


def test_auto_with_gpu_required_goes_to_an_available_host() -> None:
    decision = ExecutionModeSelector(ExecutionMode.AUTO, UpHost()).select(None, require_gpu=True)
    assert decision.mode is ExecutionMode.HOST


def test_host_down_falls_back_to_local_with_a_warning() -> None:
    decision = ExecutionModeSelector(ExecutionMode.AUTO, NoHost()).select(
        ExecutionMode.HOST, require_gpu=False
    )
    assert decision.mode is ExecutionMode.LOCAL
    assert len(decision.warnings) == 1
    assert "fell back to local execution" in decision.warnings[0]


@pytest.mark.parametrize("requested", [ExecutionMode.HOST, ExecutionMode.AUTO, ExecutionMode.LOCAL])
def test_gpu_required_with_no_gpu_anywhere_is_refused(requested: ExecutionMode) -> None:
    with pytest.raises(ExecutionModeUnavailableError):
        ExecutionModeSelector(ExecutionMode.AUTO, NoHost()).select(requested, require_gpu=True)


def test_a_local_gpu_satisfies_require_gpu() -> None:
    selector = ExecutionModeSelector(ExecutionMode.LOCAL, NoHost(), local_has_gpu=True)
    assert selector.select(None, require_gpu=True).mode is ExecutionMode.LOCAL
