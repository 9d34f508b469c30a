"""Synthetic demo quotes for annual fire-alarm testing contracts. Demo data, not real prices.

The generator is a plain cost-plus model of how a service company might price the work, so that
the product can be shown and benchmarked before real historical quotes are loaded. The model
never sees this formula: it learns from the generated rows like it would from real ones.

Assumptions (all per contract and year):
- Visits: årsvis 1, kvartalsvis 4, månadsvis 12. Every contract has one full annual test
  (revisionsprov); the extra visits of quarterly and monthly contracts are shorter partial tests.
- Time on the annual test: 1.0 h set-up and report, 0.20 h per section, 3 min (0.05 h) per
  detector, 0.08 h per alarm device, 0.10 h per door-holder magnet, 1.0 h for a ventilation
  shutdown test.
- Each extra quarterly visit: 0.75 h + 0.08 h per section + a quarter of the detectors (0.05 h
  each) + 0.02 h per alarm device + 0.25 h ventilation. Each extra monthly visit: 0.5 h + 0.04 h
  per section + a twelfth... (0.05 × 0.05 h per detector) + 0.01 h per alarm device + 0.1 h
  ventilation.
- Hourly rate and travel cost per visit by city (`CITIES`); 1 500 kr a year for administration.
- Noise: the agreed price is the cost times exp(e), e ~ Normal(0, 0.10²) (negotiation, site
  conditions the inputs do not show), rounded to whole tens of kronor.

Because the noise is known, the best accuracy any model can reach (the noise floor) is known too:
`noise_floor` gives the MAPE of the oracle that knows the cost formula.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from avarn_core.schema import INPUT_COLUMNS, TARGET

# City: (share of quotes, hourly rate SEK, travel cost SEK per visit)
CITIES: dict[str, tuple[float, float, float]] = {
    "Stockholm": (0.22, 1150, 700),
    "Göteborg": (0.14, 1080, 600),
    "Malmö": (0.10, 1050, 550),
    "Uppsala": (0.07, 1060, 500),
    "Västerås": (0.05, 990, 450),
    "Örebro": (0.05, 980, 450),
    "Linköping": (0.05, 990, 450),
    "Helsingborg": (0.05, 1010, 450),
    "Jönköping": (0.04, 960, 450),
    "Norrköping": (0.04, 970, 450),
    "Lund": (0.04, 1030, 500),
    "Umeå": (0.04, 1000, 800),
    "Gävle": (0.03, 960, 550),
    "Borås": (0.04, 950, 450),
    "Sundsvall": (0.04, 980, 750),
}
NOISE_SIGMA = 0.10
ADMIN_FEE = 1500.0
INTERVAL_SHARES = {"årsvis": 0.45, "kvartalsvis": 0.40, "månadsvis": 0.15}


def expected_price(inputs: pd.DataFrame) -> np.ndarray:
    """The noiseless cost-plus price of each row (what the agreed price scatters around)."""
    rate = inputs["stad"].map({c: v[1] for c, v in CITIES.items()}).to_numpy(float)
    travel = inputs["stad"].map({c: v[2] for c, v in CITIES.items()}).to_numpy(float)
    if np.isnan(rate).any():
        raise ValueError("expected_price knows only the generator's cities")
    s, d, a, m, v = (
        inputs[c].to_numpy(float)
        for c in [
            "antal_sektioner",
            "antal_detektorer",
            "antal_larmdon",
            "dörrhållarmagneter",
            "ventilation",
        ]
    )
    quarterly = inputs["kvartalsvis"].to_numpy(float)
    monthly = inputs["månadsvis"].to_numpy(float)
    annual_hours = 1.0 + 0.20 * s + 0.05 * d + 0.08 * a + 0.10 * m + 1.0 * v
    quarterly_hours = 3 * (0.75 + 0.08 * s + 0.25 * 0.05 * d + 0.02 * a + 0.25 * v)
    monthly_hours = 11 * (0.5 + 0.04 * s + 0.05 * 0.05 * d + 0.01 * a + 0.1 * v)
    hours = annual_hours + quarterly * quarterly_hours + monthly * monthly_hours
    visits = 1 + 3 * quarterly + 11 * monthly
    return hours * rate + visits * travel + ADMIN_FEE


def generate_inputs(n: int, seed: int = 0) -> pd.DataFrame:
    """Plausible sites: sizes skewed like a real customer base, detectors tied to sections."""
    rng = np.random.default_rng(seed)
    cities = list(CITIES)
    shares = np.array([CITIES[c][0] for c in cities])
    sections = np.clip(np.round(rng.lognormal(np.log(6), 0.8, n)), 1, 200)
    detectors = np.round(sections * rng.uniform(2, 12, n))
    devices = np.round(detectors * rng.uniform(0.15, 0.6, n))
    magnets = np.where(rng.random(n) < 0.45, 0, np.round(rng.lognormal(np.log(6), 0.9, n)))
    interval = rng.choice(list(INTERVAL_SHARES), n, p=list(INTERVAL_SHARES.values()))
    frame = pd.DataFrame(
        {
            "antal_sektioner": sections.astype(int),
            "antal_detektorer": detectors.astype(int),
            "antal_larmdon": devices.astype(int),
            "dörrhållarmagneter": np.minimum(magnets, 2000).astype(int),
            "ventilation": (rng.random(n) < 0.35).astype(int),
            "stad": rng.choice(cities, n, p=shares / shares.sum()),
        }
    )
    for column in INTERVAL_SHARES:
        frame[column] = (interval == column).astype(int)
    return frame[INPUT_COLUMNS]


def generate_quotes(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` synthetic historical quotes: the nine inputs and the agreed price `pris`.

    >>> generate_quotes(3, seed=1).columns[-1]
    'pris'
    """
    frame = generate_inputs(n, seed)
    noise = np.random.default_rng([seed, 1]).normal(0.0, NOISE_SIGMA, n)
    frame[TARGET] = np.round(expected_price(frame) * np.exp(noise), -1).astype(int)
    return frame


def swedish_sheet(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` generated sites as a salesperson's spreadsheet: two extra columns (customer,
    address), Swedish headers, Ja/Nej and one Testintervall column (benchmarks use it).

    >>> list(swedish_sheet(1).columns)[:3]
    ['Kund', 'Adress', 'Antal sektioner']
    """
    inputs = generate_inputs(n, seed=seed)
    return pd.DataFrame(
        {
            "Kund": [f"Kund {i}" for i in range(n)],
            "Adress": [f"Storgatan {i % 200 + 1}" for i in range(n)],
            "Antal sektioner": inputs["antal_sektioner"],
            "Antal detektorer": inputs["antal_detektorer"],
            "Antal larmdon": inputs["antal_larmdon"],
            "Dörrhållarmagneter": inputs["dörrhållarmagneter"],
            "Ventilation": np.where(inputs["ventilation"] == 1, "Ja", "Nej"),
            "Stad": inputs["stad"],
            "Testintervall": inputs[list(INTERVAL_SHARES)].idxmax(axis=1).str.title(),
        }
    )


def oracle_price(inputs: pd.DataFrame) -> np.ndarray:
    """The best point prediction for MAPE when the formula and noise are known.

    For lognormal noise the price minimising the expected absolute percentage error is
    median × exp(-sigma²), slightly under the median.
    """
    return expected_price(inputs) * np.exp(-(NOISE_SIGMA**2))


def noise_floor(quotes: pd.DataFrame) -> float:
    """MAPE of the oracle on these quotes: no model can do better on average."""
    actual = quotes[TARGET].to_numpy(float)
    return float(np.mean(np.abs(actual - oracle_price(quotes)) / actual))


def oracle_relative_width(level: float = 0.90) -> float:
    """(upper - lower) / quoted price of the narrowest central interval the true noise allows.

    The oracle's interval is median·exp(±z·sigma) around its quoted price median·exp(-sigma²).
    """
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    width = np.exp(z * NOISE_SIGMA) - np.exp(-z * NOISE_SIGMA)
    return float(width / np.exp(-(NOISE_SIGMA**2)))
