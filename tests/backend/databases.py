"""Databases for the SQL adapter tests: SQLite always, PostgreSQL when MODELYARD_TEST_POSTGRES_URL answers."""

from __future__ import annotations

import gc
import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from backend.adapters.db.engine import build_engine, normalize_database_url
from tests.services import service_missing

#: Parametrize a fixture with this to run its tests on both databases.
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def postgres_engine() -> Iterator[Engine]:
    """An engine on a fresh schema of its own, dropped afterwards; skips when there is no server."""
    url = os.environ.get("MODELYARD_TEST_POSTGRES_URL")
    if not url:
        service_missing("MODELYARD_TEST_POSTGRES_URL is not set (make test sets it when PostgreSQL answers)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = build_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # unreachable server: skip here, fail where PostgreSQL is promised
        service_missing(f"PostgreSQL at the test URL not usable: {type(exc).__name__}: {exc}")
    engine = build_engine(url, schema=schema)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def postgres_database() -> Iterator[str]:
    """The URL of a fresh database on the test PostgreSQL server, dropped afterwards: for whole backends
    (which take a URL, not a schema); skips when there is no server."""
    url = os.environ.get("MODELYARD_TEST_POSTGRES_URL")
    if not url:
        service_missing("MODELYARD_TEST_POSTGRES_URL is not set (make test sets it when PostgreSQL answers)")
    name = f"mb_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # unreachable server: skip here, fail where PostgreSQL is promised
        service_missing(f"PostgreSQL at the test URL not usable: {type(exc).__name__}: {exc}")
    try:
        yield make_url(normalize_database_url(url)).set(database=name).render_as_string(hide_password=False)
    finally:
        # A connection a stopped backend's worker thread left to the garbage collector is finalized
        # here, its database still there, rather than warning in whichever later test collects it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def empty_database(kind: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of ``kind`` (``sqlite`` or ``postgres``), disposed afterwards."""
    if kind == "postgres":
        yield from postgres_engine()
        return
    engine = build_engine(f"sqlite:///{tmp_path / 'db' / 'ops.db'}")
    try:
        yield engine
    finally:
        engine.dispose()
