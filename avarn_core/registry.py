"""Model versions on disk.

    models/
      ACTIVE                 the active version's name
      v0001/metadata.json    manifest: metrics, library versions, sha256 of each artifact
      v0001/model.json       the GAM, blend and calibration (plain JSON)
      v0001/trees.txt        the LightGBM booster in LightGBM's text format

Nothing is unpickled. A version is written to a temporary folder and renamed into place, so a
half-written version never exists; ACTIVE is replaced atomically. Loading checks that the
version lies inside the models folder, that the feature pipeline and LightGBM versions match,
and that every artifact's sha256 matches the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from avarn_core.features import FEATURE_PIPELINE_VERSION
from avarn_core.model.price_model import PriceModel

# Bump on every change to what model.json / trees.txt hold: an older version is then refused
# with a "retrain" message instead of failing half-way through parsing.
MODEL_FORMAT = 2
ACTIVE_FILE = "ACTIVE"
_VERSION = re.compile(r"^v(\d{4,})$")
# Libraries whose version must match exactly for a saved model to load: LightGBM reads its own
# text format; the others are recorded for the record.
STRICT_LIBRARIES = ("lightgbm",)
RECORDED_LIBRARIES = ("lightgbm", "numpy", "scipy", "pandas", "avarn-core")


class ModelNotFoundError(LookupError):
    """No model, or no such version, in the models folder."""


class ModelIntegrityError(RuntimeError):
    """A model's files do not match its manifest, or it was made by other library versions."""


class ModelFormatError(ModelIntegrityError):
    """A model saved by another version of Avarn Pris or LightGBM (feature pipeline, model
    format or library version differ, or its files cannot be parsed): intact, but unreadable
    here. Retraining on the same data fixes it; nothing is wrong with the files."""


@dataclass(frozen=True)
class LoadedModel:
    model: PriceModel
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        return self.metadata["version"]


def library_versions() -> dict[str, str]:
    found = {name: package_version(name) for name in RECORDED_LIBRARIES}
    return {"python": platform.python_version(), **found}


def _version_dir(models_dir: Path, version: str) -> Path:
    if not _VERSION.match(version):
        raise ModelNotFoundError(f"'{version}' är inget modellversionsnamn (t.ex. v0001)")
    path = (models_dir / version).resolve()
    if path.parent != models_dir.resolve():
        raise ModelNotFoundError(f"'{version}' ligger inte i modellmappen")
    return path


def _numbers(models_dir: Path) -> list[int]:
    return [int(m.group(1)) for p in models_dir.iterdir() if (m := _VERSION.match(p.name))]


def list_versions(models_dir: Path) -> list[dict[str, Any]]:
    """Metadata of every saved version, oldest first, with `active` set on the active one."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    active = active_version(models_dir)
    found = []
    for path in sorted(models_dir.iterdir()):
        if _VERSION.match(path.name) and (path / "metadata.json").is_file():
            metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
            found.append({**metadata, "active": path.name == active})
    return found


def active_version(models_dir: Path) -> str | None:
    marker = Path(models_dir) / ACTIVE_FILE
    if not marker.is_file():
        return None
    return marker.read_text(encoding="utf-8").strip() or None


def active_metadata(models_dir: Path) -> dict[str, Any]:
    """The active version's manifest (metrics, training profile), without loading the model."""
    version = active_version(models_dir)
    if version is None:
        raise ModelNotFoundError(f"Ingen aktiv modell i {models_dir}")
    path = _version_dir(Path(models_dir), version) / "metadata.json"
    if not path.is_file():
        raise ModelNotFoundError(f"Modellversion {version} finns inte i {models_dir}")
    return {**json.loads(path.read_text(encoding="utf-8")), "version": version}


def version_fingerprint(models_dir: Path, version: str) -> str:
    """A short fingerprint of a saved version: the sha256 of its manifest, which records when it
    was trained and the checksum of every artifact. Caches key on it, not on the name alone, so
    a models folder that was replaced (a new v0001) is never served from an old cache entry.
    '' when the version has no manifest (loading it then raises ModelNotFoundError)."""
    try:
        path = _version_dir(Path(models_dir), version) / "metadata.json"
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except (ModelNotFoundError, OSError):
        return ""


def activate(models_dir: Path, version: str) -> None:
    """Make `version` the active one (atomically)."""
    models_dir = Path(models_dir)
    path = _version_dir(models_dir, version)
    if not (path / "metadata.json").is_file():
        raise ModelNotFoundError(f"Modellversion {version} finns inte i {models_dir}")
    tmp = models_dir / f".{ACTIVE_FILE}.{uuid.uuid4().hex}"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, models_dir / ACTIVE_FILE)


def save_version(
    models_dir: Path, model: PriceModel, report: dict[str, Any], *, activate_it: bool = True
) -> str:
    """Write a new version with its manifest; returns its name (v0001, v0002, …)."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = models_dir / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        files = {"model.json": json.dumps(model.to_dict()), "trees.txt": model.trees_text()}
        artifacts = {}
        for name, text in files.items():
            if text is not None:
                data = text.encode("utf-8")
                (staging / name).write_bytes(data)
                artifacts[name] = hashlib.sha256(data).hexdigest()
        metadata = {
            "model_format": MODEL_FORMAT,
            "feature_pipeline_version": FEATURE_PIPELINE_VERSION,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "libraries": library_versions(),
            "artifacts": artifacts,
            **report,
        }
        while True:  # claim the next free number; rename fails if another writer took it
            name = f"v{max(_numbers(models_dir), default=0) + 1:04d}"
            metadata["version"] = name
            (staging / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
            try:
                os.rename(staging, models_dir / name)
                break
            except OSError:
                if not (models_dir / name).exists():
                    raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Two trainings at once: the later-numbered version wins, whichever finishes last.
    if activate_it and int(name[1:]) == max(_numbers(models_dir)):
        activate(models_dir, name)
    return name


def load_version(models_dir: Path, version: str | None = None) -> LoadedModel:
    """Load `version` (default: the active one) after checking versions and checksums."""
    models_dir = Path(models_dir)
    version = version or active_version(models_dir)
    if version is None:
        raise ModelNotFoundError(
            f"Ingen aktiv modell i {models_dir}. Träna en: avarn train --data "
            "data/training_data.csv"
        )
    path = _version_dir(models_dir, version)
    if not (path / "metadata.json").is_file():
        raise ModelNotFoundError(f"Modellversion {version} finns inte i {models_dir}")
    metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    retrain = "Träna om: avarn train --data data/training_data.csv"
    if metadata.get("feature_pipeline_version") != FEATURE_PIPELINE_VERSION:
        raise ModelFormatError(
            f"Modell {version} gjordes för feature pipeline "
            f"{metadata.get('feature_pipeline_version')}, här finns {FEATURE_PIPELINE_VERSION}. "
            + retrain
        )
    if metadata.get("model_format") != MODEL_FORMAT:
        raise ModelFormatError(
            f"Modell {version} har format {metadata.get('model_format')}, den här versionen av "
            f"Avarn Pris läser format {MODEL_FORMAT}. {retrain}"
        )
    here = library_versions()
    for library in STRICT_LIBRARIES:
        saved = metadata.get("libraries", {}).get(library)
        if saved != here[library]:
            raise ModelFormatError(
                f"Modell {version} sparades med {library} {saved}, men här finns {library} "
                f"{here[library]}. {retrain} (eller installera {library}=={saved})."
            )
    contents = {}
    for name, expected in metadata.get("artifacts", {}).items():
        file = path / name
        if file.name != name or not file.is_file():
            raise ModelIntegrityError(f"Modell {version}: filen {name} saknas")
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() != expected:
            raise ModelIntegrityError(
                f"Modell {version}: {name} matchar inte sin kontrollsumma (sha256) och laddas inte"
            )
        contents[name] = data.decode("utf-8")
    if "model.json" not in contents:
        raise ModelIntegrityError(f"Modell {version}: model.json saknas i manifestet")
    try:
        model = PriceModel.from_saved(json.loads(contents["model.json"]), contents.get("trees.txt"))
    except Exception as exc:  # any parse failure means the same to the user: retrain
        raise ModelFormatError(
            f"Modell {version} kunde inte läsas ({type(exc).__name__}). {retrain}"
        ) from exc
    return LoadedModel(model, metadata)
