"""Browser tests: `streamlit run` on a free loopback port, driven by Playwright in Debian's
headless Chromium. A screenshot of each page goes to test-artifacts/.

They skip (with the reason) only where Chromium or Playwright is missing and CI is not set;
with CI set a missing browser fails the run, so CI can never pass without running them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from avarn_core.predict import Predictor
from avarn_core.predlog import PredictionLog

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("AVARN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KRONOR = re.compile(r"^\d{1,3}(\u00a0\d{3})*\u00a0kr$")
TIMEOUT_MS = 30_000

BATCH_CSV = (
    "Kund;Adress;Antal sektioner;Antal detektorer;Antal larmdon;Dörrhållarmagneter;"
    "Ventilation;Stad;Testintervall\r\n"
    '=HYPERLINK("http://x");Storgatan 1;14;66;20;3;Ja;Uppsala;Årsvis\r\n'
    "Kvarnens förskola;Storgatan 2;22;103;28;9;Nej;goteborg;Kvartalsvis\r\n"
    "Fel 1;Väg 4;0;20;5;0;Nej;Lund;Årsvis\r\n"
).encode("utf-8-sig")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).is_file():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run streamlit_app.py` on loopback with its own models folder and log."""

    def __init__(self, models_dir: Path, db_url: str, log_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AVARN_MODELS_DIR": str(models_dir), "AVARN_DB_URL": db_url}
        self._log = log_file.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
                "--server.headless", "true",
                "--server.address", "127.0.0.1",
                "--server.port", str(self.port),
                "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.log_file = log_file

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited: {self.log_file.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"streamlit not ready: {self.log_file.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture(scope="module")
def server(browser, app_models_dir, tmp_path_factory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'log.db'}"
    running = Server(app_models_dir, url, folder / "streamlit.log")
    try:
        running.wait_ready()
        running.db_url = url
        yield running
    finally:
        running.stop()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(300)  # let charts finish drawing
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text().strip()


def price_a_quote(page, base_url: str, city: str | None = None) -> str:
    page.goto(base_url)
    submit = page.get_by_role("button", name="Beräkna pris")
    submit.wait_for()
    if city is not None:
        page.get_by_role("combobox", name="Stad").click()
        page.keyboard.type(city)
        page.keyboard.press("Enter")
    submit.click()
    page.get_by_text("Det här påverkar priset mest").wait_for()
    return metric(page, "Pris per år (exkl. moms)")


def test_price_a_quote_with_a_new_city(page, server):
    log = PredictionLog(server.db_url)
    before = log.count()
    price = price_a_quote(page, server.url, city="Ankeborg")
    assert KRONOR.match(price), price
    assert (
        "Staden 'Ankeborg' finns inte i modellens data"
        in page.get_by_test_id("stAlert").first.inner_text()
    )
    assert page.get_by_text("Modellversion:").first.is_visible()  # the sidebar
    screenshot(page, "offert")
    logged = log.quotes().iloc[before:]
    assert len(logged) == 1
    assert logged["stad"].iloc[0] == "Ankeborg"
    assert int(logged["predicted_price"].iloc[0]) == int(re.sub(r"\D", "", price))


def test_upload_a_spreadsheet_and_download_the_result(page, server, tmp_path):
    upload = tmp_path / "kunder.csv"
    upload.write_bytes(BATCH_CSV)
    page.goto(f"{server.url}/batch")
    page.get_by_text("Fil att prissätta").wait_for()
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_text("Rader i filen").wait_for()
    assert [metric(page, m) for m in ("Rader i filen", "Prissatta", "Med fel")] == ["3", "2", "1"]
    page.get_by_test_id("stDataFrame").nth(1).wait_for()  # the errors and the results
    screenshot(page, "batch")

    with page.expect_download() as caught:
        page.get_by_role("button", name="Ladda ner resultat (CSV)").click()
    assert caught.value.suggested_filename == "kunder_priser.csv"
    data = Path(caught.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel opens it right
    back = pd.read_csv(io.BytesIO(data), sep=";", dtype=str, encoding="utf-8-sig")
    assert list(back["Kund"]) == ['\'=HYPERLINK("http://x")', "Kvarnens förskola", "Fel 1"]
    assert back["predicted_price"].iloc[:2].str.fullmatch(r"\d+").all()
    assert "mindre än 1" in back["error"].iloc[2]

    with page.expect_download() as caught:
        page.get_by_role("button", name="Ladda ner resultat (Excel)").click()
    sheet = openpyxl.load_workbook(io.BytesIO(Path(caught.value.path()).read_bytes())).active
    rows = list(sheet.values)
    header = rows[0]
    assert rows[1][header.index("Kund")] == '\'=HYPERLINK("http://x")'  # text, not a formula
    assert isinstance(rows[1][header.index("predicted_price")], int)  # numbers stay numbers


def test_explanation_and_performance_pages(page, server, app_models_dir, training_quotes):
    price = price_a_quote(page, server.url)
    page.get_by_role("button", name="Visa förklaringen").click()
    page.get_by_text("Att berätta för kunden").wait_for()
    assert metric(page, "Pris per år (exkl. moms)") == price
    assert page.get_by_text(re.compile(f"= {price}$")).count() == 1  # it adds up
    page.get_by_test_id("stVegaLiteChart").nth(1).wait_for()  # waterfall and global view
    screenshot(page, "forklaring")
    with page.expect_download() as caught:
        page.get_by_role("button", name="Ladda ner sammanfattning för kunden").click()
    summary = Path(caught.value.path()).read_text(encoding="utf-8")
    assert f"Pris: {price} per år, exklusive moms" in summary

    # Actual prices for some logged quotes, so that every chart on the page has data.
    log = PredictionLog(server.db_url)
    priced = Predictor.load(app_models_dir).quote_frame(
        training_quotes.head(60).reset_index(drop=True)
    )
    log.log_quotes(priced.assign(latency_ms=4.0), source="cli")
    log.record_actuals(
        pd.DataFrame(
            {
                "prediction_id": priced["prediction_id"],
                "faktiskt_pris": training_quotes["pris"].head(60).to_numpy(),
            }
        )
    )
    page.get_by_role("link", name="Modellprestanda").click()
    page.get_by_text("Offerter per dag").wait_for()
    assert metric(page, "Med faktiskt pris") == "60"
    screenshot(page, "modellprestanda")
    page.get_by_role("tab", name="Träffsäkerhet").click()
    page.get_by_text("Offererat mot faktiskt pris").wait_for()
    screenshot(page, "modellprestanda_traffsakerhet")


def test_a_deep_link_on_a_fresh_server_goes_through_the_entry_script(
    browser, app_models_dir, tmp_path
):
    # Streamlit runs pages/*.py on their own when the first request after a start is a deep
    # link; the app must still show its sidebar and navigation (and would train a model).
    fresh = Server(app_models_dir, f"sqlite:///{tmp_path / 'log.db'}", tmp_path / "st.log")
    try:
        fresh.wait_ready()
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{fresh.url}/modellprestanda")
        page.get_by_text("Aktiv prismodell").wait_for()
        page.get_by_role("heading", name="Modellprestanda").wait_for()
        assert page.get_by_role("link", name="Förklaring").is_visible()
        assert page.get_by_text("streamlit app").count() == 0  # no legacy page list
        context.close()
    finally:
        fresh.stop()


def test_actual_prices_typed_in_the_editor_stay_on_their_quotes(page, server, app_models_dir):
    """Type an actual price, let a new quote arrive (every row shifts down), type another and
    save: each price is recorded on the quote whose row it was typed on."""
    log = PredictionLog(server.db_url)
    contracts = pd.DataFrame(
        [[3, 12, 4, 0, 0, "Lund", 0, 0, 1], [9, 40, 12, 2, 1, "Umeå", 1, 0, 0]],
        columns=[
            "antal_sektioner", "antal_detektorer", "antal_larmdon", "dörrhållarmagneter",
            "ventilation", "stad", "kvartalsvis", "månadsvis", "årsvis",
        ],
    )  # fmt: skip
    priced = Predictor.load(app_models_dir).quote_frame(contracts).assign(latency_ms=1.0)
    log.log_quotes(priced.iloc[:1], source="cli")
    first = priced["prediction_id"].iloc[0]
    page.goto(f"{server.url}/modellprestanda")
    page.get_by_role("tab", name="Faktiska priser").click()
    grid = page.locator("[data-testid='stDataFrame']:visible").first  # the tab's editor

    def type_price(row: int, text: str, expect: str) -> None:
        # The grid is a canvas: click the "Nytt faktiskt pris" cell (after the id column,
        # width "medium" = 200 px, and the quoted price, 110 px), open it, type, commit. The
        # pauses let the grid's editor take each step (typing and Enter at once lose the text).
        for _ in range(3):
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden")  # no rerun running
            grid.wait_for()
            box = grid.bounding_box()  # where it is now (alerts above it come and go)
            page.mouse.click(box["x"] + 200 + 110 + 70, box["y"] + 35 + row * 35 + 17)
            page.wait_for_timeout(500)
            page.keyboard.press("Enter")
            page.wait_for_timeout(500)
            page.keyboard.type(text)
            page.wait_for_timeout(500)
            page.keyboard.press("Enter")
            try:
                page.get_by_role("button", name=expect).wait_for(timeout=5_000)
                return
            except Exception:  # noqa: BLE001 - Playwright's timeout; tried again
                page.keyboard.press("Escape")
        raise AssertionError(f"the editor did not take {text}")

    quoted = int(priced["predicted_price"].iloc[0])
    type_price(0, str(quoted + 100), "Spara 1 faktiskt pris")
    log.log_quotes(priced.iloc[1:], source="api")  # meanwhile: a new quote on top
    second = priced["prediction_id"].iloc[1]
    page.get_by_role("combobox", name="Period").click()
    page.get_by_role("option", name="Allt").click()  # any rerun shows the shifted rows
    page.get_by_role("tab", name="Faktiska priser").click()
    page.wait_for_timeout(1_000)
    newest = int(priced["predicted_price"].iloc[1])
    type_price(0, str(newest - 100), "Spara 2 faktiska priser")  # the new quote's row
    screenshot(page, "modellprestanda_faktiska_priser")
    page.get_by_role("button", name="Spara 2 faktiska priser").click()
    page.get_by_text("Registrerade 2 faktiska priser").wait_for()
    recorded = log.quotes().set_index("prediction_id")["faktiskt_pris"]
    assert recorded[first] == quoted + 100 and recorded[second] == newest - 100
