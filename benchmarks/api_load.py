"""Load benchmark of the REST API over loopback.

    python benchmarks/api_load.py [--clients 8] [--requests 250] [--db-url URL] [--workers 1]

Starts `uvicorn avarn_core.api:app` on a free 127.0.0.1 port (a model trained on
data/training_data.csv into a temporary folder, unless --models-dir names one with an active
version; a fresh SQLite log in a temporary folder unless --db-url is given), sends a warm-up,
then `--clients` concurrent clients (threads, each with its own keep-alive connection) send
`--requests` POST /predict each, with varied valid inputs. Prints p50/p95/p99/max latency as
the client sees it, throughput, and checks that every quote is in the log exactly once.
Bounded: loopback only, a fixed number of requests, a timeout on each.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from avarn_core.predlog import PredictionLog
from avarn_core.registry import active_version
from avarn_core.train import train_file

REPO = Path(__file__).resolve().parents[1]
CITIES = ["Stockholm", "Göteborg", "Malmö", "Uppsala", "Västerås", "Örebro", "Linköping"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_body(rng: random.Random) -> dict:
    interval = rng.choice(["årsvis", "kvartalsvis", "månadsvis"])
    sections = rng.randint(1, 40)
    return {
        "antal_sektioner": sections,
        "antal_detektorer": rng.randint(sections, sections * 12),
        "antal_larmdon": rng.randint(0, sections * 4),
        "dörrhållarmagneter": rng.randint(0, sections * 2),
        "ventilation": rng.randint(0, 1),
        "stad": rng.choice(CITIES),
        "kvartalsvis": int(interval == "kvartalsvis"),
        "månadsvis": int(interval == "månadsvis"),
        "årsvis": int(interval == "årsvis"),
    }


def start_server(models_dir: Path, db_url: str, workers: int, log: Path) -> tuple:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AVARN_", "MLFLOW_"))}
    env.update({"AVARN_MODELS_DIR": str(models_dir), "AVARN_DB_URL": db_url})
    command = [
        sys.executable, "-m", "uvicorn", "avarn_core.api:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--workers", str(workers),
    ]  # fmt: skip
    out = log.open("wb")
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"uvicorn was not healthy in time:\n{log.read_text()[-3000:]}")


def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="avarn-api-load-"))
    models_dir = Path(args.models_dir) if args.models_dir else tmp / "models"
    if active_version(models_dir) is None:
        print(f"Training a model on {args.training_data} into {models_dir} ...", file=sys.stderr)
        train_file(Path(args.training_data), models_dir, track=False)
    db_url = args.db_url or f"sqlite:///{tmp / 'predictions.db'}"
    log = PredictionLog(db_url)
    before = log.count()

    process, url = start_server(models_dir, db_url, args.workers, tmp / "uvicorn.log")
    latencies: list[float] = []
    ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(args.clients + 1)

    def client(number: int) -> None:
        rng = random.Random(number)
        bodies = [request_body(rng) for _ in range(args.requests)]
        mine: list[float] = []
        got: list[str] = []
        with httpx.Client(base_url=url, timeout=30) as http:
            http.post("/predict", json=bodies[0])  # open the connection (not counted, logged)
            start_gate.wait()
            for body in bodies:
                started = time.perf_counter()
                response = http.post("/predict", json=body)
                mine.append((time.perf_counter() - started) * 1000)
                if response.status_code == 200:
                    got.append(response.json()["prediction_id"])
                else:
                    with lock:
                        failures.append(f"{response.status_code}: {response.text[:200]}")
        with lock:
            latencies.extend(mine)
            ids.extend(got)

    try:
        for _ in range(50):  # warm-up: imports, first model calls, first log writes
            httpx.post(url + "/predict", json=request_body(random.Random(0)), timeout=30)
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        start_gate.wait()
        wall_started = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall_started
    finally:
        process.terminate()
        process.wait(timeout=30)

    total = args.clients * args.requests
    logged = log.count() - before
    expected_logged = total + args.clients + 50  # + each client's connection request + warm-up
    api_ids = set(log.quotes()["prediction_id"])
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    print(f"API load: {args.clients} clients × {args.requests} POST /predict over loopback")
    print(f"  log: {'SQLite' if db_url.startswith('sqlite') else 'PostgreSQL'}, "
          f"uvicorn workers: {args.workers}")  # fmt: skip
    print(f"  requests: {total}, failures: {len(failures)}")
    print(f"  latency p50 {quantiles[49]:.1f} ms, p95 {quantiles[94]:.1f} ms, "
          f"p99 {quantiles[98]:.1f} ms, max {max(latencies):.1f} ms")  # fmt: skip
    print(f"  throughput {total / wall:.0f} requests/s ({wall:.2f} s wall)")
    all_logged = set(ids) <= api_ids and len(set(ids)) == len(ids) == total - len(failures)
    print(f"  logged: {logged} new rows (expected {expected_logged}); "
          f"every returned id logged once: {all_logged}")  # fmt: skip
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    ok = not failures and logged == expected_logged and all_logged
    if failures:
        print("  first failures:", *failures[:5], sep="\n    ")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=250, help="per client")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--models-dir", help="a models folder with an active version")
    parser.add_argument("--training-data", default=str(REPO / "data" / "training_data.csv"))
    parser.add_argument("--db-url", help="the log (default: a fresh SQLite file)")
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
