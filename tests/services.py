"""What a test does when a service it needs (PostgreSQL, Chromium) is missing: skip on a developer's machine,
fail where the services are promised (CI sets MODELYARD_REQUIRE_SERVICES=1), so a missing service is never
counted as a pass there."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ENV = "MODELYARD_REQUIRE_SERVICES"


def services_required() -> bool:
    """MODELYARD_REQUIRE_SERVICES=1, or CI=true as CI systems set it."""
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes") for name in (REQUIRE_ENV, "CI"))


def service_missing(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail with it when the services are required here."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set: this machine promises it)", pytrace=False)
    pytest.skip(reason)
