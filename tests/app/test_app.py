"""AppTest: every page of the Streamlit app, run headless against a real model and log.

Each test gets its own prediction log (a fresh SQLite file) and the session's model.
Widgets are found by `key=`; what the user reads is checked as shown (e.g. "31 168 kr").
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from avarn_core import app_state
from avarn_core.monitoring import accuracy
from avarn_core.predict import Predictor
from avarn_core.predlog import PredictionLog
from avarn_core.presentation import count_text, format_percent
from avarn_core.registry import activate
from avarn_core.service import PricingService
from avarn_core.settings import get_settings

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
NBSP = "\u00a0"
KRONOR = re.compile(r"^\d{1,3}(\u00a0\d{3})*\u00a0kr$")

BATCH_CSV = (
    "Kund;Adress;Antal sektioner;Antal detektorer;Antal larmdon;Dörrhållarmagneter;"
    "Ventilation;Stad;Testintervall\r\n"
    '=HYPERLINK("http://x");Storgatan 1;14;66;20;3;Ja;Uppsala;Årsvis\r\n'
    "Kvarnens förskola;Storgatan 2;22;103;28;9;Nej;goteborg;Kvartalsvis\r\n"
    "Brf Okänd;Väg 3;5;20;5;0;Nej;Ankeborg;Månadsvis\r\n"
    "Fel 1;Väg 4;0;20;5;0;Nej;Lund;Årsvis\r\n"
    "Fel 2;Väg 5;3;20;5;0;Kanske;Lund;Årsvis\r\n"
    "Fel 3;Väg 6;3;abc;5;0;Ja;;Årsvis\r\n"
).encode("utf-8-sig")


def kronor(text: str) -> int:
    """'−1 234 kr' / '+1 234 kr' / '1 234 kr' → int."""
    sign = -1 if text[0] in "\u2212-" else 1
    return sign * int(re.sub(r"[^\d]", "", text))


@pytest.fixture()
def log(monkeypatch, tmp_path, app_models_dir) -> PredictionLog:
    """Point the app at the session's model and a fresh, empty log."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    monkeypatch.setenv("AVARN_MODELS_DIR", str(app_models_dir))
    monkeypatch.setenv("AVARN_DB_URL", url)
    monkeypatch.chdir(APP.parent)
    get_settings.cache_clear()
    yield PredictionLog(url)
    get_settings.cache_clear()


def start(page: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest) -> None:
    """No exception reached the page and the app's own error handler did not fire."""
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if "Något gick fel" in e.value]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The shown table that has `column` (st.dataframe elements carry no key in AppTest)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def type_in_editor(at: AppTest, editor, edited_rows: dict) -> AppTest:
    """Run with a cell edit sent as the browser sends it: the editor's widget state (JSON), so
    that Streamlit treats it as a user's change and calls the editor's on_change. (Assigning
    the edit state on at.session_state does not call on_change; AppTest cannot type.)"""
    states = at._tree.get_widget_states()
    edit = WidgetState(id=editor.proto.id)
    edit.string_value = json.dumps(
        {"edited_rows": edited_rows, "added_rows": [], "deleted_rows": []}
    )
    states.widgets.append(edit)
    return at._run(states)


def charts(at: AppTest) -> int:
    return len(at.get("vega_lite_chart"))


# -- the entry script --------------------------------------------------------------------------


def test_sidebar_shows_the_active_model(log, app_models_dir):
    at = start()
    captions = " ".join(c.value for c in at.sidebar.caption)
    version = (app_models_dir / "ACTIVE").read_text().strip()
    assert f"Modellversion: **{version}**" in captions
    assert "Tränad:" in captions and "Medelfel på testdata:" in captions
    assert "träffade:" in captions
    assert at.title[0].value == "Offert"  # the default page


def test_first_start_trains_the_default_model_with_progress(
    log, monkeypatch, tmp_path, app_models_dir
):
    fresh = tmp_path / "models"
    monkeypatch.setenv("AVARN_MODELS_DIR", str(fresh))
    get_settings.cache_clear()
    reports = []

    def fake_training(models_dir, training_data, *, progress, warn):
        # Stands in for the real training (covered by the cold-start benchmark).
        assert Path(models_dir) == fresh and Path(training_data) == Path("data/training_data.csv")
        for message, fraction in [("Väljer modell", 0.3), ("Klar", 1.0)]:
            progress(message, fraction)
            reports.append(message)
        version = (app_models_dir / "ACTIVE").read_text().strip()
        shutil.copytree(app_models_dir / version, fresh / version)
        activate(fresh, version)
        return version

    monkeypatch.setattr(app_state, "ensure_active_model", fake_training)
    at = start()
    assert reports == ["Väljer modell", "Klar"]
    assert at.title[0].value == "Offert"
    assert not at.get("progress")  # the bar is gone once the model is ready
    start()  # a second start finds the model and does not train again
    assert reports == ["Väljer modell", "Klar"]


def test_a_tracking_failure_at_first_start_stays_in_view(
    log, monkeypatch, tmp_path, app_models_dir
):
    from avarn_core import tracking

    fresh = tmp_path / "models"
    monkeypatch.setenv("AVARN_MODELS_DIR", str(fresh))
    get_settings.cache_clear()

    def unreachable(*args, **kwargs):
        raise ConnectionError("MLflow-servern svarar inte")

    def fake_training(models_dir, training_data, *, progress, **kwargs):
        # The saved model, then the real tracking step, with MLflow unreachable.
        version = (app_models_dir / "ACTIVE").read_text().strip()
        shutil.copytree(app_models_dir / version, fresh / version)
        activate(fresh, version)
        tracking.track_if_configured(fresh, version, "http://mlflow:5000", progress, **kwargs)
        return version

    monkeypatch.setattr(tracking, "track_version", unreachable)
    monkeypatch.setattr(app_state, "ensure_active_model", fake_training)
    at = start()
    assert not at.get("progress")
    shown = [w.value for w in at.sidebar.warning]  # not on the bar, which is cleared
    assert any("MLflow\\-loggning misslyckades" in w and "svarar inte" in w for w in shown), shown
    assert app_state._NOTES in at.session_state  # and kept for this session's later runs


def test_failed_first_start_says_so_in_swedish(log, monkeypatch, tmp_path):
    monkeypatch.setenv("AVARN_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()

    def broken(*args, **kwargs):
        raise FileNotFoundError("data/training_data.csv")

    monkeypatch.setattr(app_state, "ensure_active_model", broken)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert "Prismodellen kunde inte tränas" in at.error[0].value
    assert "Traceback" not in at.error[0].value


def test_a_model_in_an_older_format_is_retrained_on_request_keeping_the_old_version(
    log, monkeypatch, tmp_path, app_models_dir
):
    models = tmp_path / "models"
    shutil.copytree(app_models_dir, models)
    old = (models / "ACTIVE").read_text().strip()
    meta = models / old / "metadata.json"
    meta.write_text(
        meta.read_text(encoding="utf-8").replace('"model_format": 2', '"model_format": 1'),
        encoding="utf-8",
    )
    monkeypatch.setenv("AVARN_MODELS_DIR", str(models))
    get_settings.cache_clear()
    trainings = []

    def fake_training(data, models_dir, *, level, progress, warn):
        # Stands in for train_file (tested on its own): a new version from the same data.
        trainings.append((Path(data), level))
        progress("Tränar slutlig modell på all data", 0.95)
        shutil.copytree(app_models_dir / old, Path(models_dir) / "v0002")
        new_meta = Path(models_dir) / "v0002" / "metadata.json"
        new_meta.write_text(
            new_meta.read_text(encoding="utf-8").replace(
                f'"version": "{old}"', '"version": "v0002"'
            ),
            encoding="utf-8",
        )
        activate(Path(models_dir), "v0002")
        return "v0002"

    monkeypatch.setattr(app_state, "train_file", fake_training)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert any(f"Prismodellen {old} sparades av en annan version" in w.value for w in at.warning)
    assert not at.error  # not a dead end: retraining is offered
    assert "samma data som förut" in " ".join(c.value for c in at.caption)
    at.button(key="retrain_model").click().run()
    assert_ok(at)
    recorded = json.loads((app_models_dir / old / "metadata.json").read_text(encoding="utf-8"))
    assert trainings == [(Path(recorded["training_data"]["path"]), recorded["level"])]
    assert at.title[0].value == "Offert"  # the app is usable again
    assert "Modellversion: **v0002**" in " ".join(c.value for c in at.sidebar.caption)
    assert (models / old / "model.json").is_file()  # the old version is kept


def test_a_failing_page_shows_a_swedish_message_and_logs_the_traceback(log, monkeypatch, caplog):
    def broken():
        raise RuntimeError("database exploded: secret details")

    monkeypatch.setattr(app_state, "service", broken)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "Något gick fel" in shown and "secret details" not in shown
    assert at.sidebar.caption  # the rest of the app still renders
    failures = [r for r in caplog.records if r.name == "avarn_core.app"]
    assert failures and "secret details" in str(failures[0].exc_info[1])


def test_a_failing_callback_shows_a_swedish_message_and_logs_the_traceback(
    log, monkeypatch, caplog
):
    at = start()
    at.button(key="offert_submit").click().run()
    at.selectbox(key="whatif_input").set_value("antal_detektorer").run()
    at.number_input(key="whatif_value_1").set_value(300).run()

    def log_down(*args, **kwargs):
        raise RuntimeError("the log is down: secret details")

    monkeypatch.setattr(PricingService, "quote", log_down)
    at.button(key="whatif_use").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(e.value for e in at.error)
    assert "Något gick fel" in shown and "secret details" not in shown
    failures = [r for r in caplog.records if r.name == "avarn_core.app" and r.exc_info]
    assert failures and "secret details" in str(failures[0].exc_info[1])
    assert at.title[0].value == "Offert"  # the page itself still renders


# -- Offert ------------------------------------------------------------------------------------


def test_a_quote_is_priced_shown_in_kronor_and_logged(log):
    at = start()
    assert at.info[0].value.startswith("Fyll i")
    at.button(key="offert_submit").click().run()
    assert_ok(at)
    shown = metrics(at)
    price = shown["Pris per år (exkl. moms)"]
    assert KRONOR.match(price), price
    low, high = shown[f"Prisintervall (90{NBSP}%)"].split(" – ")
    assert kronor(low) <= kronor(price) <= kronor(high)

    logged = log.quotes()
    assert len(logged) == 1
    row = logged.iloc[0]
    assert row["source"] == "app-single"
    assert int(row["predicted_price"]) == kronor(price)
    assert (row["antal_sektioner"], row["stad"], row["månadsvis"]) == (8, "Stockholm", 1)
    quote = at.session_state["offert_quote"]
    assert quote.prediction_id == row["prediction_id"]
    assert quote.prediction_id in at.caption[-1].value or any(
        quote.prediction_id in c.value for c in at.caption
    )
    drivers = [m.value for m in at.markdown if m.value.startswith("- ")][0].split("\n")
    assert len(drivers) == 3 and all("priset" in d for d in drivers)


def test_form_inputs_reach_the_quote(log):
    at = start()
    at.number_input(key="offert_sektioner").set_value(30)
    at.number_input(key="offert_detektorer").set_value(400)
    at.selectbox(key="offert_stad").set_value("Lund")
    at.radio(key="offert_intervall").set_value("årsvis")
    at.toggle(key="offert_ventilation").set_value(False)
    at.button(key="offert_submit").click().run()
    assert_ok(at)
    row = log.quotes().iloc[0]
    assert (row["antal_sektioner"], row["antal_detektorer"], row["stad"]) == (30, 400, "Lund")
    assert (row["årsvis"], row["ventilation"]) == (1, 0)


def test_what_if_shows_the_new_price_and_difference_without_logging(log):
    at = start()
    at.button(key="offert_submit").click().run()
    before = kronor(metrics(at)["Pris per år (exkl. moms)"])
    at.selectbox(key="whatif_input").set_value("antal_detektorer").run()
    at.number_input(key="whatif_value_1").set_value(300).run()
    assert_ok(at)
    new = [m for m in at.metric if m.label == "Nytt pris per år"][0]
    assert kronor(new.value) - before == kronor(new.delta)
    assert kronor(new.delta) > 0  # more detectors never lower the price
    assert log.count() == 1  # a comparison is not a quote

    at.button(key="whatif_use").click().run()
    assert_ok(at)
    assert log.count() == 2
    assert kronor(metrics(at)["Pris per år (exkl. moms)"]) == kronor(new.value)
    assert at.number_input(key="offert_detektorer").value == 300


def test_what_if_for_interval_and_city(log):
    at = start()
    at.button(key="offert_submit").click().run()  # the default is tested monthly
    at.selectbox(key="whatif_input").set_value("testintervall").run()
    at.radio(key="whatif_value_6").set_value("årsvis").run()
    assert_ok(at)
    new = [m for m in at.metric if m.label == "Nytt pris per år"][0]
    assert kronor(new.delta) < 0  # testing less often costs less
    at.selectbox(key="whatif_input").set_value("stad").run()
    at.selectbox(key="whatif_value_5").set_value("Lund").run()
    assert_ok(at)
    quote = at.session_state["offert_quote"]
    lund = [m for m in at.metric if m.label == "Nytt pris per år"][0]
    assert kronor(lund.value) - quote.predicted_price == kronor(lund.delta)


def test_what_if_with_an_unseen_city_warns_and_carries_the_city_into_the_form(log):
    at = start()
    at.button(key="offert_submit").click().run()
    at.selectbox(key="whatif_input").set_value("stad").run()
    typed = at.selectbox(key="whatif_value_5")
    typed.options.append("Ankeborg")  # typed, as the browser sends it (AppTest cannot type)
    typed.set_value("Ankeborg").run()
    assert_ok(at)
    assert any("Ankeborg" in w.value for w in at.warning), [w.value for w in at.warning]
    at.button(key="whatif_use").click().run()
    assert_ok(at)
    assert log.quotes()["stad"].iloc[-1] == "Ankeborg"
    assert at.selectbox(key="offert_stad").value == "Ankeborg"  # the form shows the new quote
    at.button(key="offert_submit").click().run()  # and pricing the form again keeps it
    assert_ok(at)
    assert list(log.quotes()["stad"]) == ["Stockholm", "Ankeborg", "Ankeborg"]


def test_what_if_uses_the_model_that_made_the_quote(log, monkeypatch, tmp_path, app_models_dir):
    models = tmp_path / "models"
    shutil.copytree(app_models_dir, models)
    monkeypatch.setenv("AVARN_MODELS_DIR", str(models))
    get_settings.cache_clear()
    at = start()
    at.button(key="offert_submit").click().run()
    quoted = at.session_state["offert_quote"].model_version
    # Meanwhile a new model is activated (here a copy whose metadata says 80 %).
    shutil.copytree(models / quoted, models / "v9001")
    meta = models / "v9001" / "metadata.json"
    meta.write_text(
        meta.read_text(encoding="utf-8")
        .replace(f'"version": "{quoted}"', '"version": "v9001"')
        .replace('"level": 0.9', '"level": 0.8'),
        encoding="utf-8",
    )
    activate(models, "v9001")
    at.selectbox(key="whatif_input").set_value("antal_detektorer").run()
    at.number_input(key="whatif_value_1").set_value(300).run()
    assert_ok(at)
    assert f"Prisintervall (90{NBSP}%)" in metrics(at)  # the quote's model's level
    note = " ".join(i.value for i in at.info)
    assert f"gjordes med modellversion {quoted}" in note and "v9001" in note
    assert any(f"(modellversion {quoted})" in c.value for c in at.caption)


def test_one_click_takes_the_quote_to_the_explanation(log):
    at = start()
    at.button(key="offert_submit").click().run()
    quote = at.session_state["offert_quote"]
    at.button(key="offert_to_explanation").click().run()
    assert_ok(at)
    assert at.title[0].value == "Förklaring"
    assert kronor(metrics(at)["Pris per år (exkl. moms)"]) == quote.predicted_price


# -- Batch -------------------------------------------------------------------------------------


def test_batch_upload_counts_good_and_bad_rows_and_logs_one_batch(log):
    at = start("pages/batch.py")
    assert {b.label for b in at.download_button} >= {"Ladda ner mall (CSV)"}
    at.file_uploader(key="batch_file").set_value(("kunder.csv", BATCH_CSV, "text/csv")).run()
    assert_ok(at)
    assert metrics(at) == {
        "Rader i filen": "6",
        "Prissatta": "3",
        "Med varning": "1",
        "Med fel": "3",
    }
    errors = table_with(at, "Kolumn")
    assert list(errors.columns) == ["Rad", "Kolumn", "Värde", "Fel"]
    assert list(zip(errors["Rad"], errors["Kolumn"], errors["Värde"], strict=True)) == [
        (5, "Antal sektioner", "0"),
        (6, "Ventilation", "Kanske"),
        (7, "Antal detektorer", "abc"),
        (7, "Stad", ""),
    ]
    table = table_with(at, "Kund")
    assert list(table["Kund"])[:3] == ['=HYPERLINK("http://x")', "Kvarnens förskola", "Brf Okänd"]
    shown = [*table["predicted_price"], *table["confidence_interval_upper"]]
    assert [bool(KRONOR.match(p)) for p in shown] == ([True] * 3 + [False] * 3) * 2  # "45 230 kr"
    assert list(table["predicted_price"])[3:] == [""] * 3  # rows with errors have no price
    logged_prices = sorted(int(p) for p in log.quotes()["predicted_price"])
    assert sorted(kronor(p) for p in list(table["predicted_price"])[:3]) == logged_prices
    assert table["error"].notna().sum() == 3
    assert {b.label for b in at.download_button} >= {
        "Ladda ner resultat (CSV)",
        "Ladda ner resultat (Excel)",
    }

    logged = log.quotes()
    assert len(logged) == 3 and logged["batch_id"].nunique() == 1
    assert set(logged["source"]) == {"app-batch"}
    assert len(log.errors()) == 4
    at.run()  # a rerun (e.g. after a download) does not price or log the file again
    assert log.count() == 3


def test_batch_unreadable_file_gets_a_swedish_message(log):
    at = start("pages/batch.py")
    at.file_uploader(key="batch_file").set_value(("x.csv", b"hej;hopp\r\n1;2\r\n", "text/csv"))
    at.run()
    assert_ok(at)
    assert "Kolumn saknas" in at.error[0].value
    assert log.count() == 0 and not at.metric
    assert len(log.errors()) == 1  # the unreadable file is logged once ...
    at.run()  # ... not again on a rerun (any click on the page)
    assert_ok(at)
    assert len(log.errors()) == 1
    assert "Kolumn saknas" in at.error[0].value  # and the reason stays in view
    at.file_uploader(key="batch_file").set_value(("ok.csv", BATCH_CSV, "text/csv")).run()
    assert_ok(at)
    assert not at.error or "Kolumn saknas" not in at.error[0].value
    assert metrics(at)["Prissatta"] == "3"


# -- Förklaring --------------------------------------------------------------------------------


def test_explanation_adds_up_to_the_price_to_the_krona(log, app_models_dir):
    service = PricingService(Predictor.load(app_models_dir), log)
    quote = service.quote(
        {
            "antal_sektioner": 12,
            "antal_detektorer": 150,
            "antal_larmdon": 30,
            "dörrhållarmagneter": 8,
            "ventilation": 1,
            "stad": "Malmö",
            "kvartalsvis": 1,
            "månadsvis": 0,
            "årsvis": 0,
        },
        source="app-single",
    )
    at = start("pages/forklaring.py", explain_quote=quote)
    steps = table_with(at, "Belopp")
    amounts = [kronor(a) for a in steps["Belopp"]]
    assert steps["Steg"].iloc[0] == "Typiskt avtal" and steps["Steg"].iloc[-1] == "Pris"
    assert amounts[-1] == quote.predicted_price
    assert sum(amounts[:-1]) == quote.predicted_price  # base + every input = the price
    assert charts(at) == 2  # the waterfall and the global view
    assert "= " + f"{quote.predicted_price:,}".replace(",", NBSP) in at.caption[-2].value
    sentences = [m.value for m in at.markdown if m.value.startswith("- ")][0].split("\n")
    assert len(sentences) == 3
    assert at.download_button(key="explain_summary").label.startswith("Ladda ner")
    assert "Pris:" in at.text[0].value and "Referens: " + quote.prediction_id in at.text[0].value


def test_explanation_of_a_logged_quote_by_its_id(log, app_models_dir):
    service = PricingService(Predictor.load(app_models_dir), log)
    quote = service.quote(
        {
            "antal_sektioner": 4,
            "antal_detektorer": 30,
            "antal_larmdon": 6,
            "dörrhållarmagneter": 0,
            "ventilation": 0,
            "stad": "Umeå",
            "kvartalsvis": 0,
            "månadsvis": 0,
            "årsvis": 1,
        },
        source="api",
    )
    at = start("pages/forklaring.py")
    assert at.info[0].value.startswith("Prissätt en offert")
    at.text_input(key="explain_id").set_value("finns-inte")
    at.button(key="explain_fetch").click().run()
    assert "ingen offert" in at.warning[0].value
    at.text_input(key="explain_id").set_value(f" {quote.prediction_id} ")
    at.button(key="explain_fetch").click().run()
    assert_ok(at)
    assert kronor(metrics(at)["Pris per år (exkl. moms)"]) == quote.predicted_price
    steps = table_with(at, "Belopp")
    assert sum(kronor(a) for a in steps["Belopp"].iloc[:-1]) == quote.predicted_price


# -- Modellprestanda ---------------------------------------------------------------------------


def seed(log: PredictionLog, predictor: Predictor, quotes: pd.DataFrame) -> pd.DataFrame:
    """Log `quotes` (inputs and `pris`) as priced by `predictor`, with `pris` as actual price."""
    priced = predictor.quote_frame(quotes.reset_index(drop=True))
    priced["latency_ms"] = 5.0
    log.log_quotes(priced, source="app-batch", batch_id="seed")
    log.record_actuals(
        pd.DataFrame(
            {"prediction_id": priced["prediction_id"], "faktiskt_pris": quotes["pris"].to_numpy()}
        )
    )
    return priced.assign(faktiskt_pris=quotes["pris"].to_numpy())


def test_performance_empty_state(log):
    at = start("pages/modellprestanda.py")
    assert "Inga offerter har loggats ännu" in at.info[0].value
    assert not at.metric and charts(at) == 0


def test_performance_period_leaves_out_older_quotes(log, app_models_dir, training_quotes):
    priced = Predictor.load(app_models_dir).quote_frame(training_quotes.head(2).reset_index())
    old = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=200)
    log.log_quotes(priced.assign(latency_ms=3.0, created_at=[old, old]), source="cli")
    at = start("pages/modellprestanda.py")
    assert "Inga offerter under perioden" in at.info[0].value  # default: the last 90 days
    at.selectbox(key="perf_days").set_value(365).run()
    assert_ok(at)
    assert metrics(at)["Offerter"] == "2"


def test_performance_shows_metrics_from_a_seeded_log(log, app_models_dir, training_quotes):
    predictor = Predictor.load(app_models_dir)
    priced = seed(log, predictor, training_quotes.sample(400, random_state=3))
    log.log_errors(
        pd.DataFrame(
            {
                "row": [2, 3],
                "column": ["Stad"] * 2,
                "value": [""] * 2,
                "reason": ["stad saknas"] * 2,
            }
        ),
        source="app-batch",
        batch_id="b2",
    )
    at = start("pages/modellprestanda.py")
    shown = metrics(at)
    ape = (priced["predicted_price"] - priced["faktiskt_pris"]).abs() / priced["faktiskt_pris"]
    inside = priced["faktiskt_pris"].between(
        priced["confidence_interval_lower"], priced["confidence_interval_upper"]
    )
    assert shown["Offerter"] == "400" and shown["Med faktiskt pris"] == "400"
    assert shown["Medelfel (MAPE)"] == format_percent(ape.mean())
    assert shown["Täckning"] == format_percent(inside.mean())
    assert shown["Felandel"] == format_percent(2 / 402)
    assert charts(at) >= 7  # volume, weekly, per version, scatter, city, interval, drift
    assert not [e.value for e in at.error]  # in-distribution data: no alert
    assert not [i.value for i in at.info if "Inga faktiska priser" in i.value]
    # The same figures as the monitoring functions, by construction of the page.
    assert format_percent(accuracy(log.quotes())["mape"].iloc[0]) == shown["Medelfel (MAPE)"]


def test_performance_headline_is_the_active_versions(log, app_models_dir, training_quotes):
    predictor = Predictor.load(app_models_dir)
    older = training_quotes.sample(40, random_state=5).reset_index(drop=True)
    priced = predictor.quote_frame(older).assign(latency_ms=1.0, model_version="v0000")
    log.log_quotes(priced, source="cli")
    log.record_actuals(
        pd.DataFrame(
            {
                "prediction_id": priced["prediction_id"],
                "faktiskt_pris": priced["predicted_price"] * 1.5,  # the old model was far off
            }
        )
    )
    active = seed(log, predictor, training_quotes.sample(60, random_state=6))
    at = start("pages/modellprestanda.py")
    shown = metrics(at)
    ape = (active["predicted_price"] - active["faktiskt_pris"]).abs() / active["faktiskt_pris"]
    assert shown["Offerter"] == "100"  # volume: every version
    assert shown["Med faktiskt pris"] == "60"  # accuracy: the active version, as the alerts
    assert shown["Medelfel (MAPE)"] == format_percent(ape.mean())
    scope = " ".join(c.value for c in at.caption)
    assert f"aktiva modellen {predictor.version}" in scope and "v0000" in scope
    versions = table_with(at, "Modellversion")
    assert versions["Modellversion"].tolist() == ["v0000", f"{predictor.version} (aktiv)"]
    at.selectbox(key="perf_version").set_value("v0000").run()
    assert_ok(at)
    assert any("40 offerter har ett faktiskt pris" in c.value for c in at.caption)


def test_performance_warns_about_drift(log, app_models_dir, training_quotes):
    predictor = Predictor.load(app_models_dir)
    moved = training_quotes.sample(60, random_state=4).assign(stad="Ankeborg")
    seed(log, predictor, moved)
    at = start("pages/modellprestanda.py")
    alerts = [e.value for e in at.error]
    assert any("Drift i stad" in a for a in alerts), alerts
    assert any("okända städer 100" in a for a in alerts)


def test_performance_without_actuals_says_how_to_add_them(log, app_models_dir, training_quotes):
    predictor = Predictor.load(app_models_dir)
    priced = predictor.quote_frame(training_quotes.head(3).reset_index(drop=True))
    priced["latency_ms"] = 5.0
    log.log_quotes(priced, source="app-single")
    at = start("pages/modellprestanda.py")
    assert any("Inga faktiska priser ännu" in i.value for i in at.info)
    assert metrics(at)["Med faktiskt pris"] == "0"

    ids = list(priced["prediction_id"])
    # Agreed prices near the quotes (one far from its quote would be refused as a typo).
    first = int(priced["predicted_price"].iloc[0] * 1.1)
    second = int(priced["predicted_price"].iloc[1] * 0.95)
    first_text = f"{first:,}".replace(",", " ")  # "41 000", as Swedish Excel writes it
    upload = (
        f"prediction_id;faktiskt_pris;datum\r\n{ids[0]};{first_text};2025-03-01\r\n"
        f"{ids[1]};{second},50;\r\nokänt-id;1000;\r\n"
    )
    at.file_uploader(key="actuals_file").set_value(
        ("faktiska.csv", upload.encode("cp1252"), "text/csv")
    ).run()
    assert_ok(at)
    assert "Registrerade 2 faktiska priser" in at.success[0].value
    assert any("okänt" in w.value for w in at.warning)
    assert metrics(at)["Med faktiskt pris"] == count_text(2)  # the figures include them
    actual = log.quotes().set_index("prediction_id")["faktiskt_pris"]
    assert actual[ids[0]] == first and actual[ids[1]] == second + 0.5
    assert pd.isna(actual[ids[2]])
    at.run()
    assert not at.success  # said once
    assert len(log.actuals()) == 2  # the same upload is not recorded twice on a rerun

    both = f"id;prediction_id;pris;avtalat pris\r\nK-1;{ids[2]};{first};{first}\r\n"
    at.file_uploader(key="actuals_file").set_value(("två.csv", both.encode(), "text/csv")).run()
    assert_ok(at)
    shown = [e.value for e in at.error]
    assert any("Flera kolumner kan vara faktiskt\\_pris" in e for e in shown), shown
    at.run()
    assert any("Flera kolumner" in e.value for e in at.error)  # the reason stays in view
    assert len(log.actuals()) == 2


def test_an_edited_actual_price_stays_on_its_quote_when_a_new_quote_is_logged(
    log, app_models_dir, training_quotes
):
    """The editor shows the newest 500 quotes; a quote logged meanwhile (by a colleague or the
    API) shifts every row down by one. The price typed on a row must still be saved on that
    row's quote, not on the quote that moved into its position."""
    predictor = Predictor.load(app_models_dir)
    contracts = training_quotes.sample(501, replace=True, random_state=1).reset_index(drop=True)
    priced = predictor.quote_frame(contracts).assign(latency_ms=1.0)
    log.log_quotes(priced.iloc[:500], source="cli")
    at = start("pages/modellprestanda.py")
    editor = at.data_editor[0]
    target = str(editor.value.index[0])  # the newest quote
    price = int(priced.set_index("prediction_id").loc[target, "predicted_price"])
    at.session_state[editor.key] = {
        "edited_rows": {0: {"faktiskt_pris": price}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert_ok(at)
    assert at.button(key="actuals_save").label == "Spara 1 faktiskt pris"

    log.log_quotes(priced.iloc[500:], source="api")  # a new quote: the rows shift
    at.run()
    assert_ok(at)
    assert at.button(key="actuals_save").label == "Spara 1 faktiskt pris"
    at.button(key="actuals_save").click().run()
    assert_ok(at)
    assert "Registrerade 1 faktiskt pris" in at.success[0].value
    recorded = log.quotes().set_index("prediction_id")["faktiskt_pris"].dropna()
    assert recorded.to_dict() == {target: price}
    assert not at.data_editor[0].value["faktiskt_pris"].notna().any()  # the editor is reset
    assert at.button(key="actuals_save").disabled


def test_an_actual_price_typed_as_a_new_quote_arrives_stays_on_its_quote(
    log, app_models_dir, training_quotes
):
    """The edit and the shift in the same rerun: the editor's state still refers to the rows
    as they were shown, and must be read that way (by the ids the user saw)."""
    predictor = Predictor.load(app_models_dir)
    contracts = training_quotes.sample(4, random_state=2).reset_index(drop=True)
    priced = predictor.quote_frame(contracts).assign(latency_ms=1.0)
    log.log_quotes(priced.iloc[:3], source="cli")
    at = start("pages/modellprestanda.py")
    editor = at.data_editor[0]
    target = str(editor.value.index[1])  # the second row as shown
    price = int(priced.set_index("prediction_id").loc[target, "predicted_price"])
    log.log_quotes(priced.iloc[3:], source="api")  # arrives while the price is typed
    type_in_editor(at, editor, {1: {"faktiskt_pris": price}})
    assert_ok(at)
    assert str(at.data_editor[0].value.index[2]) == target  # it moved down one row ...
    assert at.data_editor[0].value["faktiskt_pris"].iloc[2] == price  # ... with its price
    at.button(key="actuals_save").click().run()
    assert_ok(at)
    recorded = log.quotes().set_index("prediction_id")["faktiskt_pris"].dropna()
    assert recorded.to_dict() == {target: price}
