# One image for every bus process: `techne gateway`, `techne worker`, `techne sink --partner X`.
#
# No secret is baked in: webhook secrets, HMAC keys and ClickHouse credentials come from the
# environment at run time (see deploy/env.example and docker-compose.yml). The build context
# is an allow-list (.dockerignore), so a local deploy/.env can never end up in a layer.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: wheels for the project and all its dependencies ------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
COPY techne ./techne
COPY schemas ./schemas
COPY producers ./producers
COPY streams ./streams
COPY sinks ./sinks
RUN pip wheel --wheel-dir /wheels .

# --- runtime ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 techne \
    && useradd --system --uid 10001 --gid techne --home-dir /var/lib/techne --no-create-home \
       --shell /usr/sbin/nologin techne

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels techne-bus

# The installed package cannot find deploy/ next to itself: ship the (non-secret) venue list
# and data-sharing agreements and point the settings at them.
WORKDIR /app
COPY deploy/venues.yaml deploy/venues.yaml
COPY deploy/agreements deploy/agreements
RUN mkdir -p /var/lib/techne && chown techne:techne /var/lib/techne

ENV TECHNE_DATA_DIR=/var/lib/techne \
    TECHNE_VENUES_FILE=/app/deploy/venues.yaml \
    TECHNE_AGREEMENTS_DIR=/app/deploy/agreements

USER techne:techne
# 8080: webhook gateway (HTTP, also serves /metrics/); 9100: TECHNE_METRICS_PORT of worker/sinks.
EXPOSE 8080 9100

CMD ["techne", "--help"]
