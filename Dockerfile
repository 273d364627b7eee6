# One image for every bus process: `techne gateway`, `techne worker`, `techne sink --partner X`,
# `techne sink --audit`, `techne lag --serve`, `techne registry` (docker-compose.yml).
#
# Reproducible: every Python dependency comes from requirements.txt (exact versions, hashes
# checked, --no-deps: nothing is resolved at build time); the project's own wheel is built with
# the locked setuptools/wheel (--no-build-isolation). No secret is baked in: webhook secrets,
# HMAC keys and passwords come from the environment at run time (deploy/.env, see
# deploy/README.md). The build context is an allow-list (.dockerignore), so a local deploy/.env
# can never end up in a layer. tests/integration/test_image.py replays this file without a
# Docker engine (context, build stage, runtime files and ENV) and starts every compose service.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a venv with the locked dependencies and the project's wheel --------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.txt ./
RUN python -m venv /opt/techne \
    && /opt/techne/bin/pip install --require-hashes --no-deps -r requirements.txt
COPY pyproject.toml README.md ./
COPY core ./core
COPY schemas ./schemas
COPY producers ./producers
COPY streams ./streams
COPY sinks ./sinks
COPY insights ./insights
COPY techne ./techne
COPY bench ./bench
RUN /opt/techne/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/techne/bin/pip install --no-deps --no-index --find-links /wheels techne-bus \
    && /opt/techne/bin/pip check

# --- runtime -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 techne \
    && useradd --system --uid 10001 --gid techne --home-dir /var/lib/techne --no-create-home --shell /usr/sbin/nologin techne

COPY --from=build /opt/techne /opt/techne

# The installed package has no deploy/ beside it: ship the (non-secret) venue list, data-sharing
# agreements, CSV import profiles and consent-question mappings, and point the settings at them (core/settings.py).
WORKDIR /app
COPY deploy/venues.yaml deploy/venues.yaml
COPY deploy/agreements deploy/agreements
COPY deploy/import-profiles deploy/import-profiles
COPY deploy/consent-sources.yaml deploy/consent-sources.yaml
RUN mkdir -p /var/lib/techne \
    && chown techne:techne /var/lib/techne

ENV PATH=/opt/techne/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TECHNE_DATA_DIR=/var/lib/techne \
    TECHNE_VENUES_FILE=/app/deploy/venues.yaml \
    TECHNE_AGREEMENTS_DIR=/app/deploy/agreements \
    TECHNE_IMPORT_PROFILES_DIR=/app/deploy/import-profiles \
    TECHNE_CONSENT_SOURCES_FILE=/app/deploy/consent-sources.yaml

USER techne:techne
# 8080: webhook gateway (HTTP, also serves /metrics/); 8081: schema registry API;
# 9100: TECHNE_METRICS_PORT of worker, sinks and lag exporter.
EXPOSE 8080 8081 9100

CMD ["techne", "--help"]
