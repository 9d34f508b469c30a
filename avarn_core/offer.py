"""One offer as the salesperson handles it: the form's inputs, what-if, the customer summary.

The app's Offert and Förklaring pages are thin layers over these functions.

>>> with_change(DEFAULT_INPUTS, "testintervall", "årsvis")["årsvis"]
1
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from avarn_core.explain import count_phrase, driver_sentences, format_sek, interval_of
from avarn_core.predict import Explanation, Predictor, Quote
from avarn_core.schema import (
    COUNT_COLUMNS,
    EXAMPLE_REQUEST,
    INPUT_COLUMNS,
    INTERVAL_COLUMNS,
    INTERVAL_LABELS,
    LABELS,
    QUOTE_KEYS,
)

# The form starts from the original API's request example.
DEFAULT_INPUTS: dict[str, Any] = dict(EXAMPLE_REQUEST)
# What a what-if can change: each count, ventilation, the city and the testing interval.
WHAT_IF_INPUTS = [*COUNT_COLUMNS, "ventilation", "stad", "testintervall"]
TESTS_PER_YEAR = {"årsvis": 1, "kvartalsvis": 4, "månadsvis": 12}


def interval_flags(interval: str) -> dict[str, int]:
    """'kvartalsvis' → {'årsvis': 0, 'kvartalsvis': 1, 'månadsvis': 0}."""
    if interval not in INTERVAL_COLUMNS:
        raise ValueError(f"unknown testing interval {interval!r}")
    return {column: int(column == interval) for column in INTERVAL_COLUMNS}


def form_inputs(
    counts: Mapping[str, int], *, ventilation: bool, city: str | None, interval: str
) -> dict[str, Any]:
    """The nine model inputs from the form's widgets (city stripped; '' when none chosen)."""
    return {
        **{column: int(counts[column]) for column in COUNT_COLUMNS},
        "ventilation": int(bool(ventilation)),
        "stad": (city or "").strip(),
        **interval_flags(interval),
    }


def current_value(inputs: Mapping[str, Any], name: str) -> Any:
    """The value of a what-if input in `inputs` ('testintervall' → 'månadsvis')."""
    return interval_of(dict(inputs)) if name == "testintervall" else inputs[name]


def with_change(inputs: Mapping[str, Any], name: str, value: Any) -> dict[str, Any]:
    """A copy of `inputs` with one what-if input changed."""
    if name not in WHAT_IF_INPUTS:
        raise ValueError(f"{name!r} cannot be changed in a what-if")
    changed = {k: inputs[k] for k in INPUT_COLUMNS}
    if name == "testintervall":
        changed.update(interval_flags(value))
    elif name == "stad":
        changed["stad"] = str(value).strip()
    else:
        changed[name] = int(value)
    return changed


@dataclass(frozen=True)
class WhatIf:
    """The price with one input changed, and how much it differs from the quoted price."""

    name: str
    value: Any
    quote: Quote
    difference: int

    @property
    def label(self) -> str:
        return LABELS[self.name]


def what_if(predictor: Predictor, quoted: Quote, name: str, value: Any) -> WhatIf:
    """Price `quoted`'s inputs with `name` set to `value`. This is a comparison, not an offer:
    it is not logged (log it by quoting the changed inputs through the service)."""
    alternative = predictor.quote(with_change(quoted.inputs, name, value))
    return WhatIf(name, value, alternative, alternative.predicted_price - quoted.predicted_price)


def comparison_note(quoted: str, used: str, active: str) -> str | None:
    """What to say when a what-if is not priced by the model that made the quote (`quoted`):
    `used` is the model that priced the comparison, `active` the one a new quote gets."""
    if used != quoted:
        return (
            f"Modellversion {quoted}, som gjorde offerten, kan inte längre laddas. Jämförelsen "
            f"görs med den aktiva modellen {used}, så skillnaden kan delvis bero på modellbytet."
        )
    if quoted != active:
        return (
            f"Offerten gjordes med modellversion {quoted}; den aktiva modellen är nu {active}. "
            f"Jämförelsen görs med {quoted}. Används den som offert prissätts den med {active}."
        )
    return None


def city_choices(cities: list[str], *chosen: object) -> list[str]:
    """The city list of a form: the model's cities, plus any chosen city it does not know (a
    city typed earlier, or taken over from a what-if), so that the form can keep showing it."""
    extra = [str(c) for c in chosen if isinstance(c, str) and c.strip() and c not in cities]
    return [*cities, *dict.fromkeys(extra)]


def quote_from_log(row: Mapping[str, Any]) -> Quote:
    """A logged quote (a `PredictionLog.quote` row) as a `Quote`."""
    inputs = {column: row[column] for column in INPUT_COLUMNS}
    for column in INPUT_COLUMNS:
        if column != "stad":
            inputs[column] = int(inputs[column])
    keys = {key: row[key] for key in QUOTE_KEYS}
    for key in ("predicted_price", "confidence_interval_lower", "confidence_interval_upper"):
        keys[key] = int(round(float(keys[key])))
    warning = row.get("warning")
    if warning is not None and isinstance(warning, float) and math.isnan(warning):
        warning = None
    return Quote(**keys, inputs=inputs, warning=warning)


def covered_items(inputs: Mapping[str, Any]) -> list[str]:
    """What the contract covers, in a customer's words."""
    interval = interval_of(dict(inputs))
    times = TESTS_PER_YEAR[interval]
    visits = "1 gång per år" if times == 1 else f"{times} gånger per år"
    return [
        f"Brandlarm med {count_phrase('antal_sektioner', inputs['antal_sektioner'])}",
        count_phrase("antal_detektorer", inputs["antal_detektorer"]),
        f"{count_phrase('antal_larmdon', inputs['antal_larmdon'])} (sirener och blixtljus)",
        count_phrase("dörrhållarmagneter", inputs["dörrhållarmagneter"]),
        "Provning av ventilationsstyrning vid larm"
        if inputs["ventilation"]
        else "Ingen ventilationsstyrning att prova",
        f"Provning {INTERVAL_LABELS[interval].lower()} ({visits})",
        f"Anläggningen ligger i {inputs['stad']}",
    ]


def customer_summary(quote: Quote, explanation: Explanation, *, today: date | None = None) -> str:
    """A one-page plain-text summary for the customer: price, what it covers, the main
    drivers. No model words (no interval, no model version)."""
    today = today or date.today()
    lines = [
        "OFFERT – ÅRLIG PROVNING AV BRANDLARM",
        "",
        f"Datum: {today.isoformat()}",
        f"Referens: {quote.prediction_id}",
        "",
        f"Pris: {format_sek(quote.predicted_price)} per år, exklusive moms",
        "",
        "Avtalet omfattar:",
        *[f"  - {item}" for item in covered_items(quote.inputs)],
        "",
        "Det här påverkar priset mest:",
        *[f"  - {sentence}" for sentence in driver_sentences(explanation, n=3)],
        "",
        "Priset gäller under förutsättning att uppgifterna ovan stämmer med anläggningen.",
    ]
    return "\n".join(lines) + "\n"


def template_frame() -> pd.DataFrame:
    """The batch template: the headers Swedish Excel users know, two example rows and two
    extra columns (customer, address) that come back untouched."""
    return pd.DataFrame(
        {
            "Kund": ["Brf Exempel", "Exempelskolan"],
            "Adress": ["Storgatan 1", "Skolvägen 2"],
            LABELS["antal_sektioner"]: [8, 22],
            LABELS["antal_detektorer"]: [25, 103],
            LABELS["antal_larmdon"]: [15, 28],
            LABELS["dörrhållarmagneter"]: [5, 9],
            LABELS["ventilation"]: ["Ja", "Nej"],
            LABELS["stad"]: ["Stockholm", "Göteborg"],
            LABELS["testintervall"]: ["Månadsvis", "Årsvis"],
        }
    )
