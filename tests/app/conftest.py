"""Fixtures for the app tests (AppTest and browser): the session's model, saved the way
`avarn train` saves one, so the pages find everything they read from a model's metadata."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avarn_core.features import EXPLAINED_INPUTS, encode
from avarn_core.monitoring import profile_inputs
from avarn_core.registry import active_version


@pytest.fixture(scope="session")
def app_models_dir(tmp_path_factory, models_dir, training_quotes, trained) -> Path:
    """A copy of the session's model whose metadata also records the training file, its
    profile (for drift) and the global importance, as `train_file` records them (the conftest
    model is saved from `train_model`, which does not know the file). No second training:
    this only writes metadata, which the registry does not checksum."""
    root = tmp_path_factory.mktemp("app")
    path = root / "models"
    shutil.copytree(models_dir, path)
    data = root / "training_data.csv"
    training_quotes.to_csv(data, index=False)
    sample = training_quotes.sample(min(len(training_quotes), 5000), random_state=0)
    contributions = trained.model.contributions_kr(encode(sample, trained.model.cities))
    meta_file = path / active_version(path) / "metadata.json"
    metadata = json.loads(meta_file.read_text(encoding="utf-8"))
    metadata["training_data"] = {
        "path": str(data),
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "rows": len(training_quotes),
        "rows_rejected": 0,
    }
    metadata["training_profile"] = profile_inputs(training_quotes)
    metadata["global_importance"] = dict(
        zip(EXPLAINED_INPUTS, np.abs(contributions).mean(axis=0).round(2).tolist(), strict=True)
    )
    meta_file.write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return path
