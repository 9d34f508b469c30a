"""Statistical model tests on seeded data: the product rules hold by construction."""

from itertools import chain, combinations
from math import factorial

import numpy as np
import pandas as pd
import pytest

from avarn_core.features import EXPLAINED_INPUTS, Features, encode
from avarn_core.model import NotFittedError
from avarn_core.model.gam import MonotoneGAM
from avarn_core.model.price_model import ModelSpec, PriceModel, conformal_bounds, mape_scale
from avarn_core.schema import COUNT_COLUMNS, UPPER_BOUNDS
from avarn_core.synthetic import generate_inputs, generate_quotes, noise_floor
from avarn_core.train import evaluate

N = 5000


@pytest.fixture(scope="module")
def random_inputs():
    """Random quotes over the whole valid box, not just the typical sizes, plus unseen cities."""
    rng = np.random.default_rng(5)
    frame = generate_inputs(N, seed=99)
    wide = rng.random(N) < 0.3
    for column in COUNT_COLUMNS:
        high = UPPER_BOUNDS[column] - 1
        frame.loc[wide, column] = rng.integers(0, high, wide.sum())
    frame["antal_sektioner"] = frame["antal_sektioner"].clip(lower=1)
    frame.loc[rng.random(N) < 0.05, "stad"] = "Kiruna"
    return frame


def test_fitted_model_has_both_parts_and_a_calibration(trained):
    model = trained.model
    assert model.calibration is not None and model.calibration.level == 0.9
    assert 0 <= model.spec.gam_weight <= 1
    table = trained.report["model_choice"]
    assert {row["family"] for row in table} == {"gam", "trees", "blend"}


@pytest.mark.parametrize("column", [*COUNT_COLUMNS, "ventilation", "interval"])
def test_price_never_falls_when_something_is_added(predictor, random_inputs, column):
    before = predictor.quote_frame(random_inputs)
    after_inputs = random_inputs.copy()
    if column == "ventilation":
        after_inputs["ventilation"] = 1
    elif column == "interval":  # årsvis → kvartalsvis → månadsvis
        monthly = after_inputs["kvartalsvis"] == 1
        yearly = after_inputs["årsvis"] == 1
        after_inputs.loc[monthly, ["kvartalsvis", "månadsvis"]] = [0, 1]
        after_inputs.loc[yearly, ["årsvis", "kvartalsvis"]] = [0, 1]
    else:
        after_inputs[column] = (after_inputs[column] + 1).clip(upper=UPPER_BOUNDS[column])
    after = predictor.quote_frame(after_inputs)
    # The interval's bounds move with the price when the testing interval stays the same; each
    # testing interval has its own calibrated width, so only the price is compared across them.
    keys = ["predicted_price"]
    if column != "interval":
        keys += ["confidence_interval_lower", "confidence_interval_upper"]
    for key in keys:
        assert (after[key] >= before[key]).all(), f"{key} fell for {column}"
    assert (after["predicted_price"] > before["predicted_price"]).mean() > 0.2


@pytest.mark.parametrize("gam_weight", [1.0, 0.0], ids=["gam", "trees"])
def test_each_part_is_monotone_on_its_own(training_quotes, random_inputs, gam_weight):
    cities = sorted(training_quotes["stad"].unique())
    spec = ModelSpec(gam={"n_knots": 5}, trees={"num_rounds": 300}, gam_weight=gam_weight)
    model = PriceModel(spec, cities).fit(
        encode(training_quotes, cities), np.log(training_quotes["pris"].to_numpy(float))
    )
    x = encode(random_inputs, cities)
    before = model.predict_log(x)
    changed = []
    for k in range(len(COUNT_COLUMNS)):
        counts = x.counts.copy()
        counts[:, k] = np.minimum(counts[:, k] + 1, UPPER_BOUNDS[COUNT_COLUMNS[k]])
        changed.append(Features(counts, x.ventilation, x.frequency, x.city))
    changed.append(Features(x.counts, np.ones(len(x)), x.frequency, x.city))
    changed.append(Features(x.counts, x.ventilation, np.minimum(x.frequency + 1, 2), x.city))
    for after in changed:
        assert (model.predict_log(after) >= before - 1e-12).all()


def test_explanations_add_up_to_the_krona(predictor, random_inputs):
    quotes = predictor.quote_frame(random_inputs)
    contributions = predictor.explain_frame(random_inputs)
    total = contributions.sum(axis=1)
    exact = predictor.model.quote(encode(random_inputs, predictor.cities))[0]
    assert np.abs(total - exact).max() < 1e-6
    assert np.abs(total - quotes["predicted_price"]).max() <= 0.5 + 1e-9


def test_single_quote_explanation_matches_the_table(predictor, request_example):
    explanation = predictor.explain(request_example)
    quote = predictor.quote(request_example)
    assert (
        abs(
            explanation.base_price + sum(explanation.contributions.values()) - quote.predicted_price
        )
        <= 0.5
    )
    frame = predictor.explain_frame(pd.DataFrame([request_example]))
    assert frame.iloc[0, 1:].tolist() == pytest.approx(list(explanation.contributions.values()))


def test_tree_contributions_match_shap(trained, random_inputs):
    shap = pytest.importorskip("shap")
    trees = trained.model.trees
    if trees is None:
        pytest.skip("model choice picked the GAM alone")
    features = encode(random_inputs.iloc[:300], trained.model.cities)
    features = features.take(np.flatnonzero(features.city >= 0))
    from avarn_core.model.boosting import _matrix

    explainer = shap.TreeExplainer(trees.booster_)
    expected = explainer.shap_values(_matrix(features))
    ours = trees.contributions(features)
    order = [0, 1, 2, 3, 4, EXPLAINED_INPUTS.index("testintervall"), EXPLAINED_INPUTS.index("stad")]
    assert np.allclose(ours[:, order], expected, atol=1e-6)


def _exact_shapley(model: MonotoneGAM, x: Features, background: Features) -> np.ndarray:
    """Brute-force interventional Shapley values over all coalitions of the seven inputs."""
    groups = {
        0: ["c0"],
        1: ["c1"],
        2: ["c2"],
        3: ["c3"],
        4: ["ventilation"],
        5: ["city"],
        6: ["frequency"],
    }
    players = list(groups)

    def value(coalition) -> float:
        counts = background.counts.copy()
        ventilation = background.ventilation.copy()
        frequency = background.frequency.copy()
        city = background.city.copy()
        for p in coalition:
            if p < 4:
                counts[:, p] = x.counts[0, p]
            elif p == 4:
                ventilation[:] = x.ventilation[0]
            elif p == 5:
                city[:] = x.city[0]
            else:
                frequency[:] = x.frequency[0]
        return float(model.predict_log(Features(counts, ventilation, frequency, city)).mean())

    n = len(players)
    phi = np.zeros(n)
    for i in players:
        others = [p for p in players if p != i]
        for subset in chain.from_iterable(combinations(others, r) for r in range(n)):
            weight = factorial(len(subset)) * factorial(n - len(subset) - 1) / factorial(n)
            phi[i] += weight * (value((*subset, i)) - value(subset))
    return phi


def test_gam_contributions_are_exact_shapley_values():
    quotes = generate_quotes(400, seed=3)
    cities = sorted(quotes["stad"].unique())
    features = encode(quotes, cities)
    gam = MonotoneGAM(n_knots=3).fit(features, np.log(quotes["pris"].to_numpy(float)), len(cities))
    for row in [0, 7, 42]:
        x = features.take(np.array([row]))
        ours = gam.contributions(x)[0]
        assert np.allclose(ours, _exact_shapley(gam, x, features), atol=1e-9)


def test_steps_out_of_order_say_so():
    quotes = generate_quotes(300, seed=4)
    cities = sorted(quotes["stad"].unique())
    features = encode(quotes, cities)
    model = PriceModel(
        ModelSpec(gam={"n_knots": 3}, trees={"num_rounds": 50}, gam_weight=0.5), cities
    )
    with pytest.raises(NotFittedError, match="fit"):
        model.predict_log(features)
    with pytest.raises(NotFittedError, match="fit"):
        model.calibrate(np.zeros(100), np.zeros(100), 0.9)
    model.fit(features, np.log(quotes["pris"].to_numpy(float)))
    with pytest.raises(NotFittedError, match="calibrate"):
        model.quote(features)


def test_conformal_bounds_and_mape_scale_by_hand():
    residuals = np.arange(1, 20) / 100.0  # 19 values: (n+1)·0.05 = 1 → first; ·0.95 = 19 → last
    assert conformal_bounds(residuals, 0.90) == (0.01, 0.19)
    assert conformal_bounds(residuals[:10], 0.90) == (-np.inf, np.inf)
    # The MAPE-optimal scale of constant residuals is exp(residual).
    assert mape_scale(np.full(50, 0.1)) == pytest.approx(np.exp(0.1))


@pytest.mark.slow
def test_held_out_accuracy_and_coverage(trained):
    held_out = generate_quotes(20000, seed=2024)
    report = evaluate(trained.model, held_out, held_out["pris"].to_numpy(float))
    assert report["mape"] / noise_floor(held_out) < 1.15
    assert 0.87 <= report["coverage"] <= 0.93
    for interval, figures in report["per_interval"].items():
        assert figures["coverage"] >= 0.85, interval
    holdout = trained.report["holdout"]
    assert 0.8 <= holdout["coverage"] <= 0.98
