from pathlib import Path

import numpy as np
import pandas as pd
from scipy import integrate, stats

from avarn_core.schema import INPUT_COLUMNS, TARGET
from avarn_core.synthetic import (
    CITIES,
    NOISE_SIGMA,
    generate_quotes,
    noise_floor,
    oracle_relative_width,
)

ROOT = Path(__file__).resolve().parents[1]


def test_generator_is_seeded_and_plausible():
    a, b = generate_quotes(2000, seed=1), generate_quotes(2000, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == [*INPUT_COLUMNS, TARGET]
    assert a["stad"].nunique() == len(CITIES) >= 15
    assert (a[["kvartalsvis", "månadsvis", "årsvis"]].sum(axis=1) == 1).all()
    assert a[TARGET].between(1000, 1_000_000).all()
    # More frequent testing costs more on average, as the assumptions say.
    by_interval = {
        c: a.loc[a[c] == 1, TARGET].median() for c in ["årsvis", "kvartalsvis", "månadsvis"]
    }
    assert by_interval["årsvis"] < by_interval["kvartalsvis"] < by_interval["månadsvis"]


def test_noise_floor_matches_the_known_noise():
    # For y = m·exp(e), e ~ N(0, s²), and the oracle m·exp(-s²): APE = |1 - exp(-s² - e)|.
    def ape(e):
        return abs(1 - np.exp(-(NOISE_SIGMA**2) - e)) * stats.norm.pdf(e, scale=NOISE_SIGMA)

    theory, _ = integrate.quad(ape, -1, 1)
    quotes = generate_quotes(40000, seed=5)
    assert abs(noise_floor(quotes) - theory) < 0.002  # rounding to tens of kronor adds ~nothing
    assert 0.07 < theory < 0.09


def test_oracle_interval_width():
    z = stats.norm.ppf(0.95)
    expected = (np.exp(z * NOISE_SIGMA) - np.exp(-z * NOISE_SIGMA)) / np.exp(-(NOISE_SIGMA**2))
    assert oracle_relative_width(0.90) == expected


def test_shipped_training_data_is_made_by_the_generator():
    shipped = pd.read_csv(ROOT / "data" / "training_data.csv")
    pd.testing.assert_frame_equal(
        shipped, generate_quotes(len(shipped), seed=42), check_dtype=False
    )
    assert 2000 <= len(shipped) <= 10000
