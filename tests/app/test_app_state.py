"""The app's shared resources (avarn_core.app_state), outside a running app: Streamlit's caches
work in bare mode, so what they are keyed on can be tested directly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avarn_core import app_state
from avarn_core.registry import activate, active_version
from avarn_core.settings import get_settings


@pytest.fixture()
def models(monkeypatch, tmp_path, app_models_dir) -> Path:
    """A private copy of the app's models folder, as the app's models folder."""
    path = tmp_path / "models"
    shutil.copytree(app_models_dir, path)
    monkeypatch.setenv("AVARN_MODELS_DIR", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def rewrite_metadata(models: Path, name: str, **changes) -> None:
    """Change a version's manifest (not its checksummed artifacts), as a retrained version that
    got the same name would have other metadata."""
    meta = models / name / "metadata.json"
    metadata = json.loads(meta.read_text(encoding="utf-8"))
    metadata.update(changes)
    meta.write_text(json.dumps(metadata, indent=2), encoding="utf-8")


def test_a_replaced_version_with_the_same_name_is_loaded_again(models):
    version = active_version(models)
    first = app_state.predictor()
    profile = app_state.training_profile()
    assert app_state.predictor() is first  # loaded once ...
    # ... until the models folder is replaced by one whose v0001 is another model.
    other_profile = {**profile, "n": profile["n"] + 1}
    rewrite_metadata(
        models, version, trained_at="2031-01-01T00:00:00+00:00", training_profile=other_profile
    )
    second = app_state.predictor()
    assert second is not first
    assert second.metadata["trained_at"] == "2031-01-01T00:00:00+00:00"
    assert app_state.metadata()["trained_at"] == "2031-01-01T00:00:00+00:00"
    assert app_state.training_profile() == other_profile


def test_the_training_profile_is_that_of_the_version_asked_for(models):
    old = active_version(models)
    new = "v9001"
    shutil.copytree(models / old, models / new)
    profile = app_state.training_profile(old)
    rewrite_metadata(models, new, version=new, training_profile={**profile, "n": 7})
    activate(models, new)
    assert app_state.training_profile(old) == profile  # not the now-active version's
    assert app_state.training_profile()["n"] == 7
    activate(models, old)
    assert app_state.training_profile(new)["n"] == 7
