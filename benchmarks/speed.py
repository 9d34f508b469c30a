"""Speed and memory benchmark.

    python benchmarks/speed.py [--rows 100000] [--repeats 3]

1. One quote with its explanation, in-process (`Predictor.quote` + `Predictor.explain`, inputs
   validated by pydantic): p50 and p95 over 2,000 quotes after a warm-up.
2. `avarn predict` on a CSV of `--rows` rows as Swedish Excel writes it (`;`, Swedish headers,
   Ja/Nej, one interval column, two extra columns, 1 % bad rows), without and with `--explain`:
   wall time of the whole command (start-up, reading, validation, pricing, writing) and its
   peak memory (max RSS of the child process), median over `--repeats`.
3. `avarn train` on 10,000 generated rows, model choice included: wall time, median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from avarn_core.predict import Predictor
from avarn_core.schema import EXAMPLE_REQUEST
from avarn_core.synthetic import generate_quotes, swedish_sheet

AVARN = [sys.executable, "-m", "avarn_core.cli"]


def swedish_csv(rows: int, path: Path) -> None:
    """The sheet as sales staff send it, with lower-case cities and 1 % bad detector counts."""
    frame = swedish_sheet(rows, seed=77)
    frame["Stad"] = frame["Stad"].str.lower()
    bad = np.random.default_rng(1).random(rows) < 0.01
    frame["Antal detektorer"] = frame["Antal detektorer"].astype(object)
    frame.loc[bad, "Antal detektorer"] = "många"
    frame.to_csv(path, sep=";", index=False, encoding="utf-8-sig")


def timed_child(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB (of this very child, from wait4) and exit code."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, child.returncode


def single_quote(models: Path) -> None:
    predictor = Predictor.load(models)
    request = dict(EXAMPLE_REQUEST)
    for _ in range(200):
        predictor.quote(request)
        predictor.explain(request)
    times = []
    for i in range(2000):
        request["antal_detektorer"] = 10 + i % 300
        started = time.perf_counter()
        predictor.quote(request)
        predictor.explain(request)
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    print(
        f"one quote + explanation: p50 {np.median(ms):.2f} ms, p95 "
        f"{np.quantile(ms, 0.95):.2f} ms (targets 5 / 20 ms)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "train.csv"
        generate_quotes(10_000, seed=5).to_csv(data, index=False)
        train_times = []
        for i in range(args.repeats):
            seconds, _, code = timed_child(
                [*AVARN, "train", "--data", str(data), "--models-dir", str(tmp / f"m{i}")]
            )
            assert code == 0, "training failed"
            train_times.append(seconds)
        print(
            f"avarn train, 10,000 rows: median {statistics.median(train_times):.1f} s "
            f"(runs {', '.join(f'{t:.1f}' for t in train_times)}; target 60 s)",
            flush=True,
        )
        models = tmp / "m0"
        single_quote(models)

        batch = tmp / "batch.csv"
        swedish_csv(args.rows, batch)
        print(f"batch file: {args.rows} rows, {batch.stat().st_size / 2**20:.1f} MB", flush=True)
        for explain in (False, True):
            times, peaks = [], []
            for _ in range(args.repeats):
                command = [
                    *AVARN,
                    "predict",
                    "--data",
                    str(batch),
                    "--out",
                    str(tmp / "o.csv"),
                    "--models-dir",
                    str(models),
                ] + (["--explain"] if explain else [])
                seconds, peak, code = timed_child(command)
                assert code == 1, f"expected exit 1 (1 % bad rows), got {code}"
                times.append(seconds)
                peaks.append(peak)
            out = pd.read_csv(tmp / "o.csv", sep=";", encoding="utf-8-sig", low_memory=False)
            assert len(out) == args.rows and out["predicted_price"].notna().mean() > 0.98
            label = "avarn predict --explain" if explain else "avarn predict"
            target = 60 if explain else 10
            print(
                f"{label}, {args.rows} rows: median {statistics.median(times):.1f} s "
                f"(runs {', '.join(f'{t:.1f}' for t in times)}; target {target} s), "
                f"peak RSS {max(peaks):.0f} MB (target 1024 MB)",
                flush=True,
            )


if __name__ == "__main__":
    main()
