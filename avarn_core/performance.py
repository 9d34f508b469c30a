"""The model performance page's figures, computed from the prediction log's frames.

`performance_report` gathers what the Modellprestanda page shows (volume, error rate,
accuracy over time and per model version, city and testing interval, predicted vs actual,
drift and the alert checks of `avarn monitor`) from `PredictionLog.quotes()` and `.errors()`;
`read_actuals` and `edited_actuals` turn an uploaded file or an edited table into the
frame `PredictionLog.record_actuals` takes. Pure functions: no database, no Streamlit.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avarn_core.monitoring import (
    PSI_WARNING,
    Health,
    accuracy,
    drift_text,
    error_rate,
    health,
    pairs,
    profile_inputs,
    volume,
)
from avarn_core.presentation import count_text, format_percent, sek_texts
from avarn_core.schema import INTERVAL_LABELS, fold
from avarn_core.settings import Settings

logger = logging.getLogger(__name__)

MAX_SCATTER_POINTS = 5_000  # a browser chart stays quick; a random sample beyond this
EDITOR_ROWS = 500  # the newest quotes offered in the actual-price editor
ACTUALS_COLUMNS = ["prediction_id", "faktiskt_pris", "datum"]
# Other names for ACTUALS_COLUMNS, used only when the file lacks the exact name.
_ACTUALS_ALIASES = {
    "prediktions_id": "prediction_id",
    "id": "prediction_id",
    "pris": "faktiskt_pris",
    "avtalat_pris": "faktiskt_pris",
    "date": "datum",
}


@dataclass
class AccuracyView:
    """How right one model version (or, with version None, every version) has been, from the
    quotes that have an actual price."""

    version: str | None  # None: all versions together
    overall: pd.Series  # n, mape, median_ape, bias, coverage, mean_relative_width
    by_week: pd.DataFrame
    by_city: pd.DataFrame
    by_interval: pd.DataFrame  # the interval column holds Swedish labels (Årsvis, …)
    pairs: pd.DataFrame  # at most MAX_SCATTER_POINTS rows
    n_pairs: int

    @property
    def n_actuals(self) -> int:
        return int(self.overall["n"])


def accuracy_view(quotes: pd.DataFrame, version: str | None = None) -> AccuracyView:
    """The accuracy figures of `version`'s quotes (None: all quotes)."""
    own = quotes if version is None else quotes[quotes["model_version"] == version]
    rated_pairs = pairs(own)
    sample = (
        rated_pairs.sample(MAX_SCATTER_POINTS, random_state=0)
        if len(rated_pairs) > MAX_SCATTER_POINTS
        else rated_pairs
    )
    by_interval = accuracy(own, by="interval")
    by_interval["interval"] = by_interval["interval"].map(INTERVAL_LABELS)
    return AccuracyView(
        version=version,
        overall=accuracy(own).iloc[0],
        by_week=accuracy(own, by="week"),
        by_city=accuracy(own, by="stad"),
        by_interval=by_interval,
        pairs=sample,
        n_pairs=len(rated_pairs),
    )


@dataclass
class PerformanceReport:
    """What the performance page shows. Quote volume and the error rate cover every model
    version in the period (a failed row never reached a model); the headline accuracy (`active`),
    the alerts and drift cover the active version only, as `avarn monitor` judges them;
    `by_version` compares the versions."""

    version: str | None  # the active model version
    n_quotes: int  # all versions
    n_actuals: int  # all versions
    health: Health
    volume: pd.DataFrame  # period, source, n
    volume_freq: str  # "D" or "W"
    errors_by_reason: pd.DataFrame  # reason, n, attempts, rate
    active: AccuracyView  # the active version
    by_version: pd.DataFrame
    psi_alert: float  # PSI beyond sampling that raises an alert (settings)
    psi_warning: float = PSI_WARNING

    @property
    def psi_warning_text(self) -> str:
        return f"{self.psi_warning:g}".replace(".", ",")

    @property
    def psi_alert_text(self) -> str:
        return f"{self.psi_alert:g}".replace(".", ",")

    @property
    def has_quotes(self) -> bool:
        return self.n_quotes > 0

    @property
    def has_actuals(self) -> bool:
        return self.n_actuals > 0

    @property
    def drift_judged(self) -> bool:
        return not self.health.drift.empty

    @property
    def other_versions(self) -> list[str]:
        """Model versions other than the active one with actual prices in the period."""
        return [v for v in self.by_version["model_version"] if v != self.version]

    def scope_text(self) -> str:
        """What the headline figures cover, in Swedish."""
        text = (
            "Offerter och felandel gäller alla modellversioner under perioden; faktiska priser, "
            f"medelfel och täckning, liksom larm och drift, gäller den aktiva modellen "
            f"{self.version}."
        )
        if self.other_versions:
            text += (
                f" Offerter från {', '.join(self.other_versions)} jämförs under "
                "Träffsäkerhet, per modellversion."
            )
        return text

    def alerts(self) -> list[str]:
        """The checks that crossed a threshold, as `avarn monitor` reports them."""
        return self.health.alerts

    def drift_warnings(self) -> list[str]:
        """Inputs whose PSI beyond sampling is at the warning level but below the alert level
        (the same figure the status and the alerts judge)."""
        return [
            drift_text(row.input, row.psi, row.sampling_psi, f"varningsnivå {PSI_WARNING:.1f}")
            for row in self.health.drift.itertuples()
            if row.status == "varning"
        ]

    def accuracy_notes(self) -> list[str]:
        """Accuracy checks (coverage, MAPE) that could not be judged, and why."""
        return self._notes(("täckning", "mape"))

    def drift_notes(self) -> list[str]:
        """Drift checks that could not be judged (too few quotes, no training profile)."""
        return self._notes(("drift",))

    def _notes(self, names: tuple[str, ...]) -> list[str]:
        return [
            c.message
            for c in self.health.checks
            if c.status in ("för lite data", "saknas") and c.name.split()[0] in names
        ]


def performance_report(
    quotes: pd.DataFrame,
    errors: pd.DataFrame,
    *,
    metadata: Mapping[str, Any],
    profile: dict[str, Any] | None,
    settings: Settings,
) -> PerformanceReport:
    """Everything the performance page shows, for the active model in `metadata`."""
    version = metadata.get("version")
    holdout_mape = (metadata.get("holdout") or {}).get("mape")
    checked = health(
        quotes,
        errors,
        profile=profile,
        holdout_mape=holdout_mape,
        settings=settings,
        model_version=version,
    )
    span = (
        quotes["created_at"].max() - quotes["created_at"].min() if len(quotes) else pd.Timedelta(0)
    )
    freq = "D" if span <= pd.Timedelta(days=60) else "W"
    return PerformanceReport(
        version=version,
        n_quotes=len(quotes),
        n_actuals=int(quotes["faktiskt_pris"].notna().sum()),
        health=checked,
        volume=volume(quotes, freq) if len(quotes) else pd.DataFrame(),
        volume_freq=freq,
        errors_by_reason=error_rate(quotes, errors, by="reason"),
        active=accuracy_view(quotes, version),
        by_version=accuracy(quotes, by="model_version"),
        psi_alert=settings.monitor_psi_alert,
    )


def version_table(by_version: pd.DataFrame, active: str | None) -> pd.DataFrame:
    """`accuracy(by="model_version")` for reading: one row per version, the active one marked,
    Swedish headers, shares as '8,1 %'."""
    return pd.DataFrame(
        {
            "Modellversion": [
                f"{v} (aktiv)" if v == active else str(v) for v in by_version["model_version"]
            ],
            "Med faktiskt pris": [count_text(n) for n in by_version["n"]],
            "Medelfel (MAPE)": [format_percent(v) for v in by_version["mape"]],
            "Täckning": [format_percent(v) for v in by_version["coverage"]],
        }
    )


def error_table(errors_by_reason: pd.DataFrame) -> pd.DataFrame:
    """`monitoring.error_rate(by="reason")` for reading: Swedish headers, share as '3,6 %'."""
    return pd.DataFrame(
        {
            "Orsak": errors_by_reason["reason"].to_list(),
            "Rader": errors_by_reason["n"].to_list(),
            "Andel av försöken": [format_percent(r) for r in errors_by_reason["rate"]],
        }
    )


def training_profile(metadata: Mapping[str, Any], root: Path = Path(".")) -> dict[str, Any] | None:
    """The training-data profile that drift is measured against.

    Taken from the model's metadata when training recorded one; otherwise computed from the
    training file named in the metadata, but only when its sha256 still matches (else None:
    drift against other data than the model saw would mislead).
    """
    if metadata.get("training_profile"):
        return dict(metadata["training_profile"])
    recorded = metadata.get("training_data") or {}
    path = Path(recorded.get("path", ""))
    path = path if path.is_absolute() else root / path
    if not recorded.get("sha256") or not path.is_file():
        return None
    if hashlib.sha256(path.read_bytes()).hexdigest() != recorded["sha256"]:
        return None
    from avarn_core.train import read_training_data  # heavy import, only when needed

    quotes, _, _ = read_training_data(path)
    return profile_inputs(quotes)


def read_actuals(data: bytes) -> pd.DataFrame:
    """An uploaded file of actual prices: `prediction_id;faktiskt_pris[;datum]` as Swedish Excel
    writes it (`;` or `,`, UTF-8 with or without BOM, or Windows-1252). Cells stay text;
    `PredictionLog.record_actuals` parses and reports them.

    Column names are matched case- and accent-insensitively. An exact name wins; an alias
    (`id`, `pris`, …) is used only when the exact name is missing, and two aliases for the same
    column are refused rather than guessed. Raises ValueError with a Swedish message; parser
    details go to the log.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as exc:
            logger.info("Actual-price file is not text: %s", exc)
            raise ValueError(
                "Filen kunde inte läsas som text. Spara den som CSV (UTF-8 eller Windows-1252)."
            ) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError("Filen är tom.")
    header = lines[0]
    separator = max((";", ",", "\t"), key=header.count)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        logger.info("Actual-price file could not be parsed: %s", exc)
        raise ValueError(_parse_error_text(str(exc))) from None
    names = next(csv.reader([header], delimiter=separator))
    chosen = _actuals_columns([str(c) for c in frame.columns], names)
    missing = [c for c in ("prediction_id", "faktiskt_pris") if c not in chosen]
    if missing:
        found = ", ".join(f"'{c}'" for c in names[:10])
        raise ValueError(f"Kolumn saknas: {', '.join(missing)}. Filen har kolumnerna {found}.")
    return pd.DataFrame(
        {target: frame[column] for target, column in chosen.items()},
        columns=[c for c in ACTUALS_COLUMNS if c in chosen],
    )


def _column_key(name: str) -> str:
    return fold(name).strip().replace(" ", "_").replace("-", "_")


def _actuals_columns(columns: list[str], header: list[str]) -> dict[str, str]:
    """Which column of the file is each of ACTUALS_COLUMNS: {target: column}. `header` is the
    header line as written (pandas renames a repeated name, e.g. 'pris.1')."""
    written = [_column_key(name) for name in header]
    chosen = {}
    for target in ACTUALS_COLUMNS:
        exact = [i for i, key in enumerate(written) if key == target]
        aliases = [i for i, key in enumerate(written) if _ACTUALS_ALIASES.get(key) == target]
        candidates = exact or aliases
        if len(candidates) > 1:
            shown = ", ".join(f"'{header[i]}'" for i in candidates)
            if exact:
                raise ValueError(f"Kolumnen {target} finns flera gånger i filen ({shown}).")
            raise ValueError(
                f"Flera kolumner kan vara {target}: {shown}. Döp den som ska användas till "
                f"{target}."
            )
        if candidates and candidates[0] < len(columns):
            chosen[target] = columns[candidates[0]]
    return chosen


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _parse_error_text(detail: str) -> str:
    """A pandas parser error in Swedish, naming the line when pandas says which."""
    found = _FIELDS.search(detail)
    if found:
        expected, line, seen = found.groups()
        return (
            f"Filen kunde inte läsas som CSV: rad {line} har {seen} fält men rubrikraden har "
            f"{expected}. Kontrollera avgränsaren (; eller ,) och att belopp med decimalkomma "
            "står inom citattecken."
        )
    return (
        "Filen kunde inte läsas som CSV. Kontrollera att den har en rubrikrad och samma "
        "avgränsare (; eller ,) på varje rad."
    )


def editor_frame(
    quotes: pd.DataFrame, pending: pd.DataFrame | None = None, rows: int = EDITOR_ROWS
) -> pd.DataFrame:
    """The newest quotes for the actual-price editor, newest first, indexed by prediction_id.

    Streamlit's data editor keeps cell edits by row *position*. Indexed by id and keyed by
    `editor_key`, the editor becomes a new, empty widget when the rows shift (a new quote was
    logged), and the edits made so far, kept by id (`pending`, from `edited_actuals`), are put
    back on their own rows here: an edit can never move to another quote.

    Columns: created_at (Swedish local time), stad, offererat and registrerat (text such as
    '45 230 kr'; registrerat is '' until an actual price is recorded), and faktiskt_pris, the
    editable column: the new actual price (empty unless pending).
    """
    newest = quotes.tail(rows).iloc[::-1]
    local = newest["created_at"].dt.tz_convert("Europe/Stockholm").dt.tz_localize(None)
    frame = pd.DataFrame(
        {
            "created_at": local.to_numpy(),
            "stad": newest["stad"].to_numpy(),
            "offererat": sek_texts(newest["predicted_price"]),
            "registrerat": sek_texts(newest["faktiskt_pris"]),
            "faktiskt_pris": np.nan,
        },
        index=pd.Index(newest["prediction_id"].astype(str), name="prediction_id"),
    )
    if pending is not None and len(pending):
        typed = pending.drop_duplicates("prediction_id", keep="last")
        by_id = typed.set_index("prediction_id")["faktiskt_pris"].astype(float)
        frame["faktiskt_pris"] = by_id.reindex(frame.index).to_numpy()
    return frame


def editor_key(frame: pd.DataFrame, generation: int = 0) -> str:
    """The editor widget's key: new when the shown quotes (ids, in order) change and when
    `generation` is bumped (after a save), so no edit outlives the rows it was made on."""
    digest = hashlib.sha256("\n".join(map(str, frame.index)).encode("utf-8")).hexdigest()
    return f"actuals_editor_{generation}_{digest[:16]}"


def merge_edits(
    pending: pd.DataFrame | None, ids: list[str], edited_rows: Mapping[Any, Mapping[str, Any]]
) -> pd.DataFrame:
    """Cell edits as Streamlit's data editor reports them (`edited_rows`: row position →
    {column: value}), made on the rows `ids` (the ids shown, in order, when the edit was
    made), merged by id into `pending` (prediction_id, faktiskt_pris). The editor's `on_change`
    calls this with the ids bound at render time, so an edit made just as a new quote shifted
    the rows still lands on the quote the user saw. A cleared cell drops that id's price."""
    by_id: dict[str, float] = {}
    if pending is not None:
        by_id = dict(zip(pending["prediction_id"], pending["faktiskt_pris"], strict=True))
    for position, cells in edited_rows.items():
        index = int(position)
        if "faktiskt_pris" not in cells or not 0 <= index < len(ids):
            continue
        value = pd.to_numeric(pd.Series([cells["faktiskt_pris"]]), errors="coerce").iloc[0]
        if pd.isna(value):
            by_id.pop(ids[index], None)
        else:
            by_id[ids[index]] = float(round(value))
    return pd.DataFrame(
        {"prediction_id": list(by_id), "faktiskt_pris": [float(v) for v in by_id.values()]}
    )


def edited_actuals(quotes: pd.DataFrame, edited: pd.DataFrame) -> pd.DataFrame:
    """The actual prices typed into the editor (`edited`: indexed by prediction_id, column
    faktiskt_pris) that differ from the logged actual of that id, in whole kronor: columns
    prediction_id and faktiskt_pris, ready for `record_actuals` (and as `pending` for
    `editor_frame`). An empty cell is no change: a recorded actual price is corrected by
    typing a new one, never removed here.
    """
    logged = quotes.drop_duplicates("prediction_id").set_index("prediction_id")["faktiskt_pris"]
    logged = logged.astype(float).reindex(edited.index.astype(str))
    typed = pd.to_numeric(edited["faktiskt_pris"], errors="coerce").astype(float).round()
    typed.index = logged.index
    changed = typed.notna() & (logged.isna() | (typed != logged))
    return pd.DataFrame(
        {
            "prediction_id": typed.index[changed].to_list(),
            "faktiskt_pris": typed[changed].to_numpy(dtype=float),
        }
    )
