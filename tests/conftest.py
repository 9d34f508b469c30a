"""Shared fixtures: tiny synthetic data → a fitted, saved model → a predictor, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from avarn_core.predict import Predictor
from avarn_core.registry import save_version
from avarn_core.synthetic import generate_quotes
from avarn_core.train import TrainingResult, train_model

TRAIN_ROWS = 1500


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
    return {
        "antal_sektioner": 8,
        "antal_detektorer": 25,
        "antal_larmdon": 15,
        "dörrhållarmagneter": 5,
        "ventilation": 1,
        "stad": "Stockholm",
        "kvartalsvis": 0,
        "månadsvis": 1,
        "årsvis": 0,
    }
