"""Words and numbers as the app shows them: percentages, times, model facts, safe Markdown.

Pure functions; the Streamlit pages call them so that they stay thin and so that what a user
reads can be tested without a browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from avarn_core.explain import INPUT_NAMES, count_text, format_sek
from avarn_core.schema import LABELS

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$=])")


def md_escape(text: object) -> str:
    """Text (a city name, a file's cell) made inert for Streamlit Markdown: no emphasis, link,
    heading, list, colour directive or emoji shortcode is created from it.

    >>> md_escape("**Lund** [x](javascript:y)")
    '\\\\*\\\\*Lund\\\\*\\\\* \\\\[x\\\\]\\\\(javascript\\\\:y\\\\)'
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def format_percent(value: float | None, decimals: int = 1) -> str:
    """0.0812 → '8,1 %' (Swedish decimal comma, space before %); None → '–'."""
    if value is None or value != value:  # NaN
        return "–"
    text = f"{value * 100:.{decimals}f}".replace(".", ",")
    return f"{text}\u00a0%"


def format_local_time(moment: str | datetime | None, zone: str = "Europe/Stockholm") -> str:
    """An ISO time (UTC when it has no zone) as Swedish local time: '2025-11-27 04:09'."""
    if moment is None:
        return "okänd tid"
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        when = when.astimezone(ZoneInfo(zone))
    except ZoneInfoNotFoundError:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M")


def model_facts(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the sidebar says about the active model: (label, value) pairs in Swedish."""
    holdout = metadata.get("holdout") or {}
    level = metadata.get("level", 0.9)
    facts = [
        ("Modellversion", str(metadata.get("version", "okänd"))),
        ("Tränad", format_local_time(metadata.get("trained_at"))),
    ]
    if holdout.get("mape") is not None:
        facts.append(("Medelfel på testdata", format_percent(holdout["mape"])))
    if holdout.get("coverage") is not None:
        facts.append(
            (
                f"Prisintervallet ({format_percent(level, 0)}) träffade",
                format_percent(holdout["coverage"]),
            )
        )
    rows = (metadata.get("training_data") or {}).get("rows", metadata.get("rows"))
    if rows:
        facts.append(("Träningsdata", f"{int(rows):,} offerter".replace(",", "\u00a0")))
    return facts


def interval_text(lower: float, upper: float) -> str:
    """'41 000 kr – 49 000 kr'."""
    return f"{format_sek(lower)} – {format_sek(upper)}"


def sek_texts(amounts: pd.Series) -> list[str]:
    """Amounts for a table shown in the app: '45 230 kr', '' where missing. (Downloads keep the
    numbers; this is for reading.)"""
    return ["" if pd.isna(a) else format_sek(a) for a in amounts.to_numpy()]


def price_table_text(table: pd.DataFrame) -> pd.DataFrame:
    """A priced table (a batch result) for reading in the app: the quoted price and interval as
    text such as '45 230 kr', empty on rows that could not be priced. Downloads use the table
    itself, where prices stay numbers."""
    shown = table.copy()
    for column in ("predicted_price", "confidence_interval_lower", "confidence_interval_upper"):
        if column in shown.columns:
            shown[column] = pd.Series(sek_texts(shown[column]), index=shown.index, dtype=object)
    return shown


def actual_prices_text(n: int) -> str:
    """'1 faktiskt pris', '2 faktiska priser', '1 200 faktiska priser'."""
    return f"{count_text(n)} {'faktiskt pris' if n == 1 else 'faktiska priser'}"


def delta_text(difference: int) -> str:
    """A price difference for `st.metric`'s delta: '+1 200 kr', '-1 200 kr' (an ASCII minus, so
    that the arrow points down), '0 kr'."""
    text = format_sek(abs(difference))
    return f"+{text}" if difference > 0 else f"-{text}" if difference < 0 else text


_VALIDATION_WORDS = {
    "string_too_short": lambda ctx: "saknas",
    "string_too_long": lambda ctx: f"får vara högst {ctx.get('max_length')} tecken",
    "greater_than_equal": lambda ctx: f"ska vara minst {ctx.get('ge')}",
    "less_than_equal": lambda ctx: f"får vara högst {count_text(ctx.get('le', 0))}",
    "int_parsing": lambda ctx: "ska vara ett heltal",
    "int_from_float": lambda ctx: "ska vara ett heltal",
    "missing": lambda ctx: "saknas",
}


def validation_text(errors: list[dict[str, Any]]) -> list[str]:
    """Pydantic's `ValidationError.errors()` as Swedish lines a salesperson understands."""
    lines = []
    for error in errors:
        field = str(error["loc"][0]) if error.get("loc") else ""
        words = _VALIDATION_WORDS.get(error.get("type", ""))
        if field in LABELS and words is not None:
            lines.append(f"{LABELS[field]} {words(error.get('ctx') or {})}.")
        elif "testintervall" in str(error.get("msg", "")) or "årsvis" in str(error.get("msg", "")):
            lines.append("Välj exakt ett testintervall.")
        else:
            lines.append(f"{LABELS.get(field, 'Uppgifterna')}: ogiltigt värde.")
    return lines


def importance_from_metadata(metadata: Mapping[str, Any]) -> pd.DataFrame:
    """What drives prices in general, as recorded at training (`global_importance`: mean
    absolute kronor per input): columns input (Swedish name) and mean_abs_sek, largest first."""
    recorded = metadata.get("global_importance") or {}
    frame = pd.DataFrame(
        {
            "input": [INPUT_NAMES.get(name, name) for name in recorded],
            "mean_abs_sek": [float(v) for v in recorded.values()],
        }
    )
    return frame.sort_values("mean_abs_sek", ascending=False, ignore_index=True)


def waterfall_table(steps: pd.DataFrame) -> pd.DataFrame:
    """The waterfall's steps as a table to read: 'Steg' and 'Belopp' ('+1 200 kr')."""
    last = len(steps) - 1
    return pd.DataFrame(
        {
            "Steg": steps["label"].to_list(),
            "Belopp": [
                format_sek(a, sign=0 < i < last) for i, a in enumerate(steps["amount"].to_list())
            ],
        }
    )


def rows_text(n: int) -> str:
    """'1 rad', '2 rader', '10 000 rader'."""
    return f"{count_text(n)} {'rad' if n == 1 else 'rader'}"
