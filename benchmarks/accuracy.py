"""Accuracy benchmark: our model beside two baselines, on held-out synthetic quotes.

    python benchmarks/accuracy.py [--repeats 3] [--test-rows 20000]

For 500, 2,000 and 10,000 training rows (each drawn `--repeats` times with different seeds),
trains
- ours: `train_model` exactly as `avarn train` does (model choice, calibration, holdout);
- "original": scikit-learn GradientBoostingRegressor on raw price, one-hot city, interval ±10 %;
- "lightgbm": LightGBM with default settings on log price (no interval);
and scores all three on the same held-out rows. Prints MAPE / noise floor (medians over the
repeats, with the range), 90 % interval coverage overall, per testing interval and per largest
city, mean relative width / the oracle's, monotonicity violations on 10,000 random quotes, and
the share of explanations that add up to the krona.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from avarn_core.features import encode
from avarn_core.schema import COUNT_COLUMNS, INPUT_COLUMNS, TARGET, UPPER_BOUNDS
from avarn_core.synthetic import (
    generate_inputs,
    generate_quotes,
    noise_floor,
    oracle_relative_width,
)
from avarn_core.train import train_model

SIZES = [500, 2000, 10000]


def original_baseline(train: pd.DataFrame):
    """The original system: GradientBoostingRegressor on raw price, one-hot city."""
    from sklearn.ensemble import GradientBoostingRegressor

    x = pd.get_dummies(train[INPUT_COLUMNS], columns=["stad"], dtype=float)
    model = GradientBoostingRegressor(random_state=0).fit(x, train[TARGET])

    def predict(frame: pd.DataFrame) -> np.ndarray:
        features = pd.get_dummies(frame[INPUT_COLUMNS], columns=["stad"], dtype=float)
        return model.predict(features.reindex(columns=x.columns, fill_value=0.0))

    return predict


def lightgbm_baseline(train: pd.DataFrame):
    """LightGBM, default settings, on log price; the city as a categorical feature."""
    import lightgbm as lgb

    cities = sorted(train["stad"].unique())

    def features(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[INPUT_COLUMNS].copy()
        out["stad"] = pd.Categorical(out["stad"], categories=cities)
        return out

    model = lgb.LGBMRegressor(verbose=-1).fit(features(train), np.log(train[TARGET]))
    return lambda frame: np.exp(model.predict(features(frame)))


def random_quotes(n: int, seed: int) -> pd.DataFrame:
    """Random valid quotes: 70 % typical sites, 30 % anywhere in the valid box."""
    rng = np.random.default_rng(seed)
    frame = generate_inputs(n, seed=seed)
    wide = rng.random(n) < 0.3
    for column in COUNT_COLUMNS:
        frame.loc[wide, column] = rng.integers(0, UPPER_BOUNDS[column], wide.sum())
    frame["antal_sektioner"] = frame["antal_sektioner"].clip(lower=1)
    return frame


def raised(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each way of adding something: a count +1, ventilation on, a more frequent interval."""
    out = {}
    for column in COUNT_COLUMNS:
        changed = frame.copy()
        changed[column] = (changed[column] + 1).clip(upper=UPPER_BOUNDS[column])
        out[column] = changed
    changed = frame.copy()
    changed["ventilation"] = 1
    out["ventilation"] = changed
    changed = frame.copy()
    quarterly, yearly = changed["kvartalsvis"] == 1, changed["årsvis"] == 1
    changed.loc[quarterly, ["kvartalsvis", "månadsvis"]] = [0, 1]
    changed.loc[yearly, ["årsvis", "kvartalsvis"]] = [0, 1]
    out["interval"] = changed
    return out


def violations(predict, frame: pd.DataFrame) -> int:
    before = predict(frame)
    return int(sum((predict(after) < before - 1e-9).sum() for after in raised(frame).values()))


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (three decimals for floats)."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def run(repeats: int, test_rows: int) -> None:
    test = generate_quotes(test_rows, seed=987_654)
    actual = test[TARGET].to_numpy(float)
    floor = noise_floor(test)
    oracle_width = oracle_relative_width(0.90)
    top_cities = test["stad"].value_counts().index[:5].tolist()
    probe = random_quotes(10_000, seed=4321)
    print(
        f"held-out rows: {test_rows}, noise floor MAPE: {floor:.4f}, "
        f"oracle 90 % relative width: {oracle_width:.4f}\n"
    )

    rows = []
    for size in SIZES:
        results: dict[str, list[dict[str, float]]] = {"ours": [], "original": [], "lightgbm": []}
        for repeat in range(repeats):
            train = generate_quotes(size, seed=1000 * size + repeat)
            started = time.perf_counter()
            ours = train_model(train)
            seconds = time.perf_counter() - started
            model = ours.model

            def predict_ours(frame, model=model):
                return model.quote(encode(frame, model.cities))[0]

            price, lower, upper = model.quote(encode(test, model.cities))
            covered = (actual >= lower) & (actual <= upper)
            figures = {
                "ratio": np.mean(np.abs(actual - price) / actual) / floor,
                "coverage": covered.mean(),
                "width_ratio": np.mean((upper - lower) / price) / oracle_width,
                "seconds": seconds,
                "gam_weight": model.spec.gam_weight,
                "violations": violations(predict_ours, probe),
            }
            for column in ["årsvis", "kvartalsvis", "månadsvis"]:
                figures[f"cov_{column}"] = covered[test[column].to_numpy() == 1].mean()
            for city in top_cities:
                figures[f"cov_{city}"] = covered[test["stad"].to_numpy() == city].mean()
            phi = model.contributions_kr(encode(probe, model.cities))
            exact = predict_ours(probe)
            rounded_price = np.round(exact)
            figures["additive"] = np.mean(
                np.abs(model.base_price() + phi.sum(axis=1) - rounded_price) <= 1.0
            )
            results["ours"].append(figures)

            original = original_baseline(train)
            price = original(test)
            covered = (actual >= 0.9 * price) & (actual <= 1.1 * price)
            results["original"].append(
                {
                    "ratio": np.mean(np.abs(actual - price) / actual) / floor,
                    "coverage": covered.mean(),
                    "width_ratio": 0.2 / oracle_width,
                    "violations": violations(original, probe),
                }
            )
            light = lightgbm_baseline(train)
            price = light(test)
            results["lightgbm"].append(
                {
                    "ratio": np.mean(np.abs(actual - price) / actual) / floor,
                    "violations": violations(light, probe),
                }
            )
        for name, runs in results.items():
            frame = pd.DataFrame(runs)
            row = {"rows": size, "model": name}
            for column in frame:
                row[column] = frame[column].median()
            row["ratio_range"] = f"{frame['ratio'].min():.3f}–{frame['ratio'].max():.3f}"
            rows.append(row)
            print(
                f"{size:>6} {name:<9} MAPE/floor {row['ratio']:.3f} ({row['ratio_range']})"
                + (f"  coverage {row['coverage']:.3f}" if "coverage" in row else "")
                + (f"  width/oracle {row['width_ratio']:.3f}" if "width_ratio" in row else "")
                + f"  violations {row['violations']:.0f}",
                flush=True,
            )

    table = pd.DataFrame(rows)
    print("\n## Summary (medians over repeats)\n")
    main_columns = [
        "rows",
        "model",
        "ratio",
        "ratio_range",
        "coverage",
        "width_ratio",
        "violations",
        "additive",
        "seconds",
        "gam_weight",
    ]
    print(markdown(table[[c for c in main_columns if c in table]]))
    coverage_columns = ["rows"] + [c for c in table if c.startswith("cov_")]
    print("\n## Coverage of ours within groups (medians over repeats)\n")
    print(markdown(table[table["model"] == "ours"][coverage_columns]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--test-rows", type=int, default=20_000)
    args = parser.parse_args()
    run(args.repeats, args.test_rows)
