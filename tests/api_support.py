"""Helpers for API tests: a real uvicorn process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90.0


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**values: str | Path | None) -> dict[str, str]:
    """This process's environment without Avarn/MLflow settings, plus `values`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("AVARN_") or k.startswith("MLFLOW_"))
    }
    env.update({k: str(v) for k, v in values.items() if v is not None})
    return env


class UvicornServer:
    """`python -m uvicorn avarn_core.api:app` on 127.0.0.1, as the Dockerfile starts it.

    >>> with UvicornServer({"AVARN_MODELS_DIR": "models"}) as server:  # doctest: +SKIP
    ...     httpx.get(server.url + "/health")
    """

    def __init__(
        self,
        env: Mapping[str, str | Path | None],
        *,
        python: str = sys.executable,
        log_dir: Path | None = None,
        wait_healthy: bool = True,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = clean_env(**env)
        self.python = python
        self.log_dir = log_dir
        self.wait_healthy = wait_healthy
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr_path: Path | None = None

    def __enter__(self) -> UvicornServer:
        command = [
            self.python,
            "-m",
            "uvicorn",
            "avarn_core.api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        log_dir = self.log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
        self._stderr_path = log_dir / f"uvicorn-{self.port}.log"
        stderr = self._stderr_path.open("wb")
        self.process = subprocess.Popen(
            command, env=self.env, cwd=REPO, stdout=stderr, stderr=subprocess.STDOUT
        )
        stderr.close()
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"uvicorn exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                status = httpx.get(self.url + "/health", timeout=2).status_code
                if status == 200 or not self.wait_healthy:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"uvicorn on {self.url} was not healthy in time:\n{self.output()}")

    def output(self) -> str:
        if self._stderr_path is None or not self._stderr_path.exists():
            return ""
        return self._stderr_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __exit__(self, *exc: object) -> None:
        self.stop()
