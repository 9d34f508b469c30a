"""Explanations a customer understands: kronor per input, in plain Swedish.

The numbers come from `Predictor.explain` (SHAP values turned into kronor so that they add up
to the price); here they are rounded so that the shown whole kronor add up exactly to the shown
price, and put into sentences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from avarn_core.features import EXPLAINED_INPUTS
from avarn_core.predict import Explanation
from avarn_core.schema import INTERVAL_COLUMNS, INTERVAL_LABELS, LABELS

INPUT_NAMES = {name: LABELS[name] for name in EXPLAINED_INPUTS}


_COUNT_WORDS = {
    "antal_sektioner": ("sektion", "sektioner"),
    "antal_detektorer": ("detektor", "detektorer"),
    "antal_larmdon": ("larmdon", "larmdon"),
    "dörrhållarmagneter": ("dörrhållarmagnet", "dörrhållarmagneter"),
}


def count_text(n: int) -> str:
    """10000 → '10 000' (no-break space, so a number never splits over two lines)."""
    return f"{int(n):,}".replace(",", "\u00a0")


def format_sek(amount: float, sign: bool = False) -> str:
    """45230.4 → '45 230 kr' (no-break spaces, so an amount never splits over two lines).

    >>> format_sek(-1234.6, sign=True)
    '−1\\xa0235\\xa0kr'
    """
    value = int(round(float(amount)))
    text = f"{abs(value):,}".replace(",", "\u00a0") + "\u00a0kr"
    if value < 0:
        return "\u2212" + text
    return ("+" + text) if sign and value > 0 else text


def round_to_total(exact: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Round each row of `exact` to whole numbers that sum to the row's integer total.

    Largest-remainder rounding: every value moves less than one unit from its exact value
    whenever the exact row sum is within one unit of the total.

    >>> round_to_total(np.array([[0.6, 0.6, 0.8]]), np.array([2])).tolist()
    [[0, 1, 1]]
    """
    exact = np.atleast_2d(exact)
    floors = np.floor(exact)
    missing = np.rint(totals - floors.sum(axis=1)).astype(int)[:, None]
    ranks = np.argsort(np.argsort(-(exact - floors), axis=1), axis=1)  # 0 = largest remainder
    width = exact.shape[1]
    up = ranks < missing
    down = (missing < 0) & (ranks >= width + missing)
    return floors.astype(int) + up - down


def rounded(explanation: Explanation) -> tuple[int, dict[str, int], int]:
    """Whole kronor that add up: base + Σ contributions = the quoted (rounded) price."""
    price = int(round(explanation.price))
    base = int(round(explanation.base_price))
    names = list(explanation.contributions)
    exact = np.array([[explanation.contributions[n] for n in names]])
    whole = round_to_total(exact, np.array([price - base]))[0]
    return base, dict(zip(names, whole.tolist(), strict=True)), price


def interval_of(inputs: dict[str, Any]) -> str:
    return next(c for c in INTERVAL_COLUMNS if int(inputs.get(c, 0)) == 1)


def describe_input(name: str, inputs: dict[str, Any]) -> str:
    """What the input is for this quote, in words: '25 detektorer', 'månadsvis provning'."""
    if name == "testintervall":
        return f"{INTERVAL_LABELS[interval_of(inputs)].lower()} provning"
    if name == "ventilation":
        return (
            "ventilationsstyrning som ska provas" if inputs["ventilation"] else "ingen ventilation"
        )
    if name == "stad":
        return f"läget i {inputs['stad']}"
    return count_phrase(name, inputs[name])


def count_phrase(name: str, count: int) -> str:
    """A count input with its noun, singular or plural: '1 sektion', '9 999 detektorer'.

    >>> count_phrase("dörrhållarmagneter", 1), count_phrase("antal_detektorer", 9999)
    ('1 dörrhållarmagnet', '9\xa0999 detektorer')
    """
    singular, plural = _COUNT_WORDS[name]
    count = int(count)
    return f"{count_text(count)} {singular if count == 1 else plural}"


def driver_sentences(explanation: Explanation, n: int = 3) -> list[str]:
    """The `n` biggest price drivers, one plain sentence each, biggest first."""
    _, whole, _ = rounded(explanation)
    top = sorted(whole, key=lambda name: -abs(explanation.contributions[name]))[:n]
    sentences = []
    for name in top:
        amount = whole[name]
        subject = describe_input(name, explanation.inputs)
        subject = subject[0].upper() + subject[1:]
        if amount == 0:
            sentences.append(f"{subject} påverkar knappt priset.")
        else:
            verb = "höjer" if amount > 0 else "sänker"
            sentences.append(
                f"{subject} {verb} priset med {format_sek(abs(amount))} "
                "jämfört med ett typiskt avtal."
            )
    return sentences


def waterfall_frame(explanation: Explanation) -> pd.DataFrame:
    """Steps from the base price to the quoted price in whole kronor, biggest driver first:
    columns step, label, amount, start, end (ready for a waterfall chart)."""
    base, whole, price = rounded(explanation)
    rows = [
        {
            "step": "Typiskt avtal",
            "label": "Typiskt avtal",
            "amount": base,
            "start": 0,
            "end": base,
        }
    ]
    level = base
    for name in sorted(whole, key=lambda k: -abs(explanation.contributions[k])):
        amount = whole[name]
        label = f"{INPUT_NAMES[name]}: {describe_input(name, explanation.inputs)}"
        rows.append(
            {
                "step": INPUT_NAMES[name],
                "label": label,
                "amount": amount,
                "start": level,
                "end": level + amount,
            }
        )
        level += amount
    rows.append({"step": "Pris", "label": "Pris", "amount": price, "start": 0, "end": price})
    return pd.DataFrame(rows)


def global_importance(contributions: pd.DataFrame) -> pd.DataFrame:
    """Mean absolute contribution per input (SEK) over many quotes, largest first.

    `contributions` has one `contribution_<input>` column per input (as `explain_frame` gives).
    """
    values = {
        INPUT_NAMES[name]: float(contributions[f"contribution_{name}"].abs().mean())
        for name in EXPLAINED_INPUTS
    }
    frame = pd.DataFrame({"input": list(values), "mean_abs_sek": list(values.values())})
    return frame.sort_values("mean_abs_sek", ascending=False, ignore_index=True)
