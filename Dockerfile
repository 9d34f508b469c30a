# syntax=docker/dockerfile:1
# One image, two targets sharing every layer but the last:
#   docker build --target api -t avarn-pris-api .   → the REST API (uvicorn, port 8000)
#   docker build --target app -t avarn-pris-app .   → the Streamlit app (port 8501), the default
# Models and the SQLite log live under /data (a volume); set AVARN_DB_URL to a PostgreSQL URL
# for several instances (docker-compose.yml).

FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AVARN_MODELS_DIR=/data/models \
    AVARN_DB_URL=sqlite:////data/logs/predictions.db \
    AVARN_TRAINING_DATA=/app/data/training_data.csv

# LightGBM needs the OpenMP runtime. Not version-pinned: the base image's Debian release fixes it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 avarn \
    && useradd --uid 10001 --gid avarn --create-home --shell /usr/sbin/nologin avarn

WORKDIR /app
# Dependencies first (their layer is cached while only code changes), then the code.
COPY requirements.txt pyproject.toml README.md ./
COPY avarn_core ./avarn_core
RUN pip install -r requirements.txt
COPY . .

RUN mkdir -p /data/models /data/logs && chown -R avarn:avarn /data
USER 10001:10001
VOLUME ["/data"]


FROM base AS api
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["uvicorn", "avarn_core.api:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]


FROM base AS app
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "streamlit_app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
