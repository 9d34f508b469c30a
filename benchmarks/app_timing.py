"""Time the Streamlit app in a real browser (headless Chromium driven by Playwright).

    python benchmarks/app_timing.py [--repeats 3] [--rows 10000] [--quotes 7]

1. Cold start: `streamlit run` with an empty models folder, so the default model is trained
   from data/training_data.csv; from launching the process to the Offert form being ready in
   the browser. Target ≤ 30 s.
2. Warm start: the same with the model already on disk. Target ≤ 5 s.
3. Submit to price: click "Beräkna pris" (with a new number of detectors each time, so every
   click is a new quote) until the new price is on the screen. Target ≤ 1 s.
4. Batch: choose a `--rows`-row CSV as Swedish Excel writes it on the Batch page until the
   summary is on the screen (upload, reading, validation, pricing, logging, rendering).
   Target ≤ 10 s for 10,000 rows.

Every figure is the median over `--repeats` (starts, uploads) or `--quotes` (quotes); all runs
are printed. Each start gets a fresh prediction log. Needs Chromium at /usr/bin/chromium (or
AVARN_CHROMIUM) and the playwright package.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from avarn_core.synthetic import swedish_sheet

ROOT = Path(__file__).resolve().parents[1]
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
TIMEOUT_MS = 120_000


def swedish_csv(rows: int, path: Path, seed: int) -> None:
    """`rows` quotes with Swedish headers, Ja/Nej, one interval column and two extra columns."""
    swedish_sheet(rows, seed=seed).to_csv(path, sep=";", index=False, encoding="utf-8-sig")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(models_dir: Path, db_url: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "AVARN_MODELS_DIR": str(models_dir), "AVARN_DB_URL": db_url}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
            "--server.headless", "true",
            "--server.address", "127.0.0.1",
            "--server.port", str(port),
            "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("streamlit exited early")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("streamlit did not become healthy")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_time(browser, models_dir: Path, folder: Path) -> float:
    """Seconds from launching `streamlit run` to the Offert form ready in the browser."""
    db_url = f"sqlite:///{folder / f'log-{time.monotonic_ns()}.db'}"
    started = time.perf_counter()
    process, url = launch(models_dir, db_url, folder / "start.log")
    try:
        wait_healthy(url, process)
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("button", name="Beräkna pris").wait_for(timeout=TIMEOUT_MS)
        elapsed = time.perf_counter() - started
        page.close()
        return elapsed
    finally:
        stop(process)


def price_times(page, url: str, quotes: int) -> list[float]:
    page.goto(url)
    submit = page.get_by_role("button", name="Beräkna pris")
    submit.wait_for(timeout=TIMEOUT_MS)
    detectors = page.get_by_role("spinbutton", name="Antal detektorer")
    price = page.get_by_test_id("stMetric").filter(has_text="Pris per år").first
    identity = page.get_by_text("Prediktions-id:")
    times, previous = [], None
    for i in range(quotes + 1):  # the first quote warms up the session; not counted
        detectors.fill(str(40 + 7 * i))
        started = time.perf_counter()
        submit.click()
        if previous is None:
            identity.wait_for(timeout=TIMEOUT_MS)
        else:
            page.wait_for_function(
                "old => !document.body.innerText.includes(old)", arg=previous, timeout=TIMEOUT_MS
            )
        elapsed = time.perf_counter() - started
        price.wait_for()
        previous = identity.inner_text()
        if i:
            times.append(elapsed)
    return times


def upload_time(page, url: str, csv: Path, rows: int) -> float:
    page.goto(f"{url}/batch")
    chooser = page.locator("input[type=file]")
    chooser.wait_for(state="attached", timeout=TIMEOUT_MS)
    started = time.perf_counter()
    chooser.set_input_files(str(csv))
    shown = f"{rows:,}".replace(",", "\u00a0")
    summary = page.get_by_test_id("stMetric").filter(has_text="Rader i filen")
    summary.filter(has_text=shown).wait_for(timeout=TIMEOUT_MS)
    return time.perf_counter() - started


def report(name: str, values: list[float], target: float) -> None:
    runs = ", ".join(f"{v:.2f}" for v in values)
    median = statistics.median(values)
    verdict = "ok" if median <= target else "OVER TARGET"
    print(f"{name}: median {median:.2f} s (target {target:g} s, {verdict}); runs {runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--quotes", type=int, default=7)
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        sys.exit(f"No Chromium at {CHROMIUM} (apt-get install chromium)")

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        folder = Path(tmp)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        cold = []
        for i in range(args.repeats):
            cold.append(start_time(browser, folder / f"cold-{i}", folder))
            print(f"  cold start {i + 1}: {cold[-1]:.2f} s", flush=True)
        models = folder / "cold-0"  # trained by the first cold start
        warm = []
        for i in range(args.repeats):
            warm.append(start_time(browser, models, folder))
            print(f"  warm start {i + 1}: {warm[-1]:.2f} s", flush=True)

        process, url = launch(models, f"sqlite:///{folder / 'work.db'}", folder / "work.log")
        try:
            wait_healthy(url, process)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            quotes = price_times(page, url, args.quotes)
            uploads = []
            for i in range(args.repeats):
                csv = folder / f"kunder-{i}.csv"
                swedish_csv(args.rows, csv, seed=100 + i)
                uploads.append(upload_time(page, url, csv, args.rows))
                print(f"  upload {i + 1} ({args.rows} rows): {uploads[-1]:.2f} s", flush=True)
        finally:
            stop(process)
        browser.close()

    print()
    report("cold start to first page (trains the model)", cold, 30)
    report("warm start to first page", warm, 5)
    report("submit to price in the browser", quotes, 1)
    report(f"{args.rows}-row upload to summary in the browser", uploads, 10)


if __name__ == "__main__":
    main()
