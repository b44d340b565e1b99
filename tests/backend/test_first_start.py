"""A first start in an empty working folder writes sample data and the sample strategies."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import Settings
from tests.backend.conftest import Fakes, start_app


@pytest.mark.anyio
async def test_first_start_writes_sample_strategies_into_an_empty_folder(
    settings: Settings, fakes: Fakes
) -> None:
    settings.generate_sample_data = True
    _app, lifespan = await start_app(settings, fakes)
    try:
        written = sorted(p.name for p in settings.strategies_dir.glob("*.yaml"))
    finally:
        await lifespan.__aexit__(None, None, None)
    assert written == ["mean_reversion.yaml", "trend_momentum.yaml"]


@pytest.mark.anyio
async def test_a_folder_with_strategies_is_left_alone(settings: Settings, fakes: Fakes) -> None:
    settings.generate_sample_data = True
    settings.strategies_dir.mkdir(parents=True)
    own = Path(settings.strategies_dir, "mine.yaml")
    own.write_text("name: mine\n")
    _app, lifespan = await start_app(settings, fakes)
    await lifespan.__aexit__(None, None, None)
    assert sorted(p.name for p in settings.strategies_dir.iterdir()) == ["mine.yaml"]
