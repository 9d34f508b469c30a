"""Shared fixtures: a fresh prediction log on SQLite and on PostgreSQL.

PostgreSQL tests need `AVARN_TEST_PG_URL` (CI sets it to
postgresql+psycopg2://root@127.0.0.1:5432/test). Without it they skip, unless `CI` is set:
then they fail, so a CI misconfiguration can never turn into a silently green build.
Each PostgreSQL test gets its own schema (put first on the search_path through the URL), so
tests never see each other's tables, also when run in parallel.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from avarn_core import db

PG_ENV = "AVARN_TEST_PG_URL"


def _pg_base_url() -> str:
    url = os.environ.get(PG_ENV, "").strip()
    if not url:
        reason = (
            f"PostgreSQL tests need {PG_ENV}, e.g. postgresql+psycopg2://root@127.0.0.1:5432/test"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = _pg_base_url()
    schema = f"avarn_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    db.dispose_engines()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'logs' / 'predictions.db'}"
    db.dispose_engines()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log_url(request) -> str:
    """The URL of a fresh, empty log on each backend."""
    return request.getfixturevalue(f"{'pg' if request.param == 'postgresql' else 'sqlite'}_url")
