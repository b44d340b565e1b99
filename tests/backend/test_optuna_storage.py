"""Optuna's RDB storage in modelyard's own database: its tables come with the migration, and a study
asks, records intermediate values and tells on SQLite and on PostgreSQL, beside our own ``alembic_version``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from backend.adapters.db.engine import MIGRATIONS_DIR, migrate
from backend.adapters.optuna_studies import OptunaStudies, study_name
from shared.contracts.sweeps import StartSweepRequest
from tests.backend.databases import DATABASES, empty_database


@pytest.fixture(params=DATABASES)
def studies(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, OptunaStudies]]:
    for engine in empty_database(request.param, tmp_path):
        migrate(engine)
        schema = None
        if request.param == "postgres":
            with engine.connect() as conn:
                schema = conn.execute(text("SELECT current_schema()")).scalar()
            url = os.environ["MODELYARD_TEST_POSTGRES_URL"]
        else:
            url = engine.url.render_as_string(hide_password=False)
        store = OptunaStudies(url, schema=schema)
        try:
            yield engine, store
        finally:
            store.close()


def _request(pruner: str = "median") -> StartSweepRequest:
    return StartSweepRequest.model_validate(
        {
            "base": {"strategy": "s", "symbol": "X", "timeframe": "1h"},
            "space": {"overrides.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
            "objective": {"metric": "val_loss"},
            "n_trials": 10,
            "pruner": pruner,
        }
    )


def test_the_migration_creates_optunas_tables_beside_ours(studies: tuple[Engine, OptunaStudies]) -> None:
    engine, _ = studies
    tables = set(inspect(engine).get_table_names())
    assert {
        "studies",
        "trials",
        "trial_intermediate_values",
        "sweeps",
        "sweep_trials",
        "operations",
    } <= tables
    with engine.connect() as conn:
        # Our own head, not Optuna's revision: the two share the table name.
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _our_head()


def _our_head() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def test_a_study_asks_records_values_and_tells_in_the_database(
    studies: tuple[Engine, OptunaStudies],
) -> None:
    _, store = studies
    sweep = f"sw{uuid.uuid4().hex[:10]}"
    request = _request()
    store.create(sweep, request)
    for value in (1.0, 2.0):
        trial_id, number, params = store.ask(sweep, request)
        assert 1e-4 <= params["overrides.learning_rate"] <= 1e-1
        store.tell(sweep, request, trial_id, number, "complete", value, {1: value, 2: value})
    trial_id, number, _ = store.ask(sweep, request)
    store.tell(sweep, request, trial_id, number, "pruned", None, {1: 50.0, 2: float("nan")})
    # Told twice (a restart between): no error, the first telling stands.
    store.tell(sweep, request, trial_id, number, "pruned", None, {1: 60.0, 3: 70.0})
    for _ in range(4):  # importances need a spread of completed trials
        trial_id, number, params = store.ask(sweep, request)
        store.tell(sweep, request, trial_id, number, "complete", params["overrides.learning_rate"] * 10, {})
    storage = store.storage  # read from the database, past Optuna's cache
    trials = storage.get_all_trials(storage.get_study_id_from_name(study_name(sweep)))
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2 + ["PRUNED"] + ["COMPLETE"] * 4
    assert [t.intermediate_values for t in trials[:3]] == [{1: 1.0, 2: 1.0}, {1: 2.0, 2: 2.0}, {1: 50.0}]
    importances = store.importances(sweep, request)
    assert importances is not None
    assert set(importances) == {"overrides.learning_rate"}
