import json

import pytest

from avarn_core.predict import Predictor
from avarn_core.registry import (
    ModelFormatError,
    ModelIntegrityError,
    ModelNotFoundError,
    activate,
    active_version,
    list_versions,
    load_version,
    save_version,
)


@pytest.fixture()
def two_versions(tmp_path, trained):
    save_version(tmp_path, trained.model, trained.report)
    save_version(tmp_path, trained.model, trained.report)
    return tmp_path


def test_versions_are_numbered_and_the_newest_is_active(two_versions):
    assert [v["version"] for v in list_versions(two_versions)] == ["v0001", "v0002"]
    assert active_version(two_versions) == "v0002"
    assert not any(p.name.startswith(".staging") for p in two_versions.iterdir())


def test_one_command_makes_an_older_version_active_again(two_versions):
    activate(two_versions, "v0001")
    assert Predictor.load(two_versions).version == "v0001"
    assert [v["active"] for v in list_versions(two_versions)] == [True, False]


def test_metadata_records_what_the_issue_asks_for(two_versions):
    meta = load_version(two_versions).metadata
    for key in [
        "feature_pipeline_version",
        "libraries",
        "artifacts",
        "holdout",
        "trained_at",
        "spec",
        "model_choice",
        "rows",
    ]:
        assert key in meta
    assert set(meta["libraries"]) >= {"lightgbm", "numpy", "python"}
    assert {"mape", "coverage", "mean_relative_width"} <= set(meta["holdout"])
    assert all(len(digest) == 64 for digest in meta["artifacts"].values())


def test_tampered_artifact_is_refused(two_versions):
    path = two_versions / "v0002" / "model.json"
    data = json.loads(path.read_text())
    data["calibration"]["scale"] *= 2
    path.write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match="sha256") as error:
        load_version(two_versions)
    assert not isinstance(error.value, ModelFormatError)  # tampered, not merely old: no retrain


def test_missing_artifact_is_refused(two_versions):
    (two_versions / "v0002" / "model.json").unlink()
    with pytest.raises(ModelIntegrityError, match="saknas"):
        load_version(two_versions)


def test_model_from_other_library_versions_is_refused_with_both_versions(two_versions):
    path = two_versions / "v0002" / "metadata.json"
    meta = json.loads(path.read_text())
    here = meta["libraries"]["lightgbm"]
    meta["libraries"]["lightgbm"] = "3.0.0"
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError) as error:  # a ModelIntegrityError that retraining fixes
        load_version(two_versions)
    message = str(error.value)
    assert "3.0.0" in message and here in message and "avarn train" in message


@pytest.mark.parametrize("name", ["../v0001", "v0001/../../x", "/etc", "latest", "v1"])
def test_only_versions_inside_the_models_folder_load(two_versions, name):
    with pytest.raises(ModelNotFoundError):
        load_version(two_versions, name)
    with pytest.raises(ModelNotFoundError):
        activate(two_versions, name)


def test_empty_models_folder_says_how_to_train(tmp_path):
    with pytest.raises(ModelNotFoundError, match="avarn train"):
        load_version(tmp_path)
    assert list_versions(tmp_path / "nothing") == []


def _rewrite_artifact(version_dir, name, content: str) -> None:
    """Replace an artifact and its manifest checksum, as an older release would have left it."""
    import hashlib

    (version_dir / name).write_text(content)
    meta = json.loads((version_dir / "metadata.json").read_text())
    meta["artifacts"][name] = hashlib.sha256(content.encode()).hexdigest()
    (version_dir / "metadata.json").write_text(json.dumps(meta))


def test_model_of_an_older_format_is_refused_with_a_retrain_message(two_versions):
    path = two_versions / "v0002" / "metadata.json"
    meta = json.loads(path.read_text())
    meta["model_format"] = 1
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="avarn train"):
        load_version(two_versions)


def test_unparseable_model_is_refused_not_crashed(two_versions):
    data = json.loads((two_versions / "v0002" / "model.json").read_text())
    del data["gam"]["city_prior"]
    _rewrite_artifact(two_versions / "v0002", "model.json", json.dumps(data))
    with pytest.raises(ModelFormatError, match="kunde inte läsas"):
        load_version(two_versions)


def test_a_slower_concurrent_training_does_not_take_over(two_versions, trained, monkeypatch):
    import os
    import shutil

    from avarn_core import registry

    real_rename = os.rename

    def rename_then_overtaken(source, target):
        real_rename(source, target)
        shutil.copytree(two_versions / "v0001", two_versions / "v0009")  # a faster trainer

    monkeypatch.setattr(registry.os, "rename", rename_then_overtaken)
    name = save_version(two_versions, trained.model, trained.report)
    assert name == "v0003" and active_version(two_versions) == "v0002"


def test_retraining_plan_prefers_the_unchanged_data_the_model_was_trained_on(
    tmp_path, trained, training_quotes
):
    import hashlib

    from avarn_core.train import retraining_plan

    own = tmp_path / "own.csv"
    training_quotes.to_csv(own, index=False)
    default = tmp_path / "training_data.csv"
    default.write_text("stand-in", encoding="utf-8")
    report = {
        **trained.report,
        "level": 0.8,
        "training_data": {
            "path": str(own),
            "sha256": hashlib.sha256(own.read_bytes()).hexdigest(),
        },
    }
    models = tmp_path / "models"
    save_version(models, trained.model, report)
    plan = retraining_plan(models, default, 0.9)
    assert (plan.version, plan.data, plan.same_data, plan.level) == ("v0001", own, True, 0.8)
    own.write_text("changed since", encoding="utf-8")  # not the data the model saw any more
    plan = retraining_plan(models, default, 0.9)
    assert (plan.data, plan.same_data) == (default, False)
    default.unlink()
    assert retraining_plan(models, default, 0.9).data is None
