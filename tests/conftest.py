"""Shared fixtures.

The model: tiny synthetic data → a fitted, saved model → a predictor, once per session.
The log: a fresh prediction log on SQLite and on PostgreSQL. PostgreSQL tests need
`AVARN_TEST_PG_URL` (CI sets it to postgresql+psycopg2://root@127.0.0.1:5432/test). Without it
they skip, unless `CI` is set: then they fail, so a CI misconfiguration can never turn into a
silently green build. Each PostgreSQL test gets its own schema (put first on the search_path
through the URL), so tests never see each other's tables, also when run in parallel.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from avarn_core import db
from avarn_core.predict import Predictor
from avarn_core.registry import save_version
from avarn_core.schema import EXAMPLE_REQUEST
from avarn_core.synthetic import generate_quotes
from avarn_core.train import TrainingResult, train_model

TRAIN_ROWS = 1500


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch) -> Iterator[None]:
    """No test writes a log or models into the working tree: settings point at tmp paths."""
    from avarn_core.settings import get_settings

    monkeypatch.setenv("AVARN_DB_URL", f"sqlite:///{tmp_path / 'isolated' / 'predictions.db'}")
    monkeypatch.setenv("AVARN_MODELS_DIR", str(tmp_path / "isolated" / "models"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def training_quotes():
    return generate_quotes(TRAIN_ROWS, seed=11)


@pytest.fixture(scope="session")
def trained(training_quotes) -> TrainingResult:
    return train_model(training_quotes, seed=0)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, trained) -> Path:
    path = tmp_path_factory.mktemp("models")
    save_version(path, trained.model, trained.report)
    return path


@pytest.fixture(scope="session")
def predictor(models_dir) -> Predictor:
    return Predictor.load(models_dir)


@pytest.fixture()
def request_example() -> dict:
    """The original API's request example."""
    return dict(EXAMPLE_REQUEST)


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
