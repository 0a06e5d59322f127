# syntax=docker/dockerfile:1
# The orchestrator daemon in a slim Python image, as a non-root user.
#
#   docker build -t orchestrator .
#   docker run -d --name orchestrator \
#     -v "$PWD/spool:/var/lib/orchestrator/spool" -v orchestrator-db:/var/lib/orchestrator/db \
#     -p 127.0.0.1:8780:8780 orchestrator
#
# Without credentials it tunes against the built-in emulator; docs/operations.md shows the real API
# (an API key or a mounted service-account file).

# The base image is pinned by digest (a tag moves; a digest is the exact bytes that were reviewed).
# Refresh it deliberately: docker buildx imagetools inspect python:3.11-slim-bookworm

# --- build: the wheel users would install, and nothing else -------------------------------------
FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY orchestrator ./orchestrator
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# --- runtime ------------------------------------------------------------------------------------
FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5
ARG UID=10001
RUN groupadd --system --gid "${UID}" orchestrator \
    && useradd --system --uid "${UID}" --gid orchestrator --home-dir /var/lib/orchestrator \
       --no-create-home --shell /usr/sbin/nologin orchestrator \
    && install -d -o orchestrator -g orchestrator -m 0750 \
       /var/lib/orchestrator /var/lib/orchestrator/spool /var/lib/orchestrator/db \
    && install -d -m 0755 /etc/orchestrator
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
COPY config/orchestrator.toml /etc/orchestrator/orchestrator.toml

# Every setting can be overridden with -e ORCHESTRATOR_<SECTION>_<KEY>=...; these fit a container:
# both folders on volumes, the status endpoint reachable through a published port, JSON logs.
ENV ORCHESTRATOR_CONFIG=/etc/orchestrator/orchestrator.toml \
    ORCHESTRATOR_SPOOL_PATH=/var/lib/orchestrator/spool \
    ORCHESTRATOR_DATABASE_PATH=/var/lib/orchestrator/db/orchestrator.db \
    ORCHESTRATOR_STATUS_ENABLED=true \
    ORCHESTRATOR_STATUS_HOST=0.0.0.0 \
    ORCHESTRATOR_STATUS_PORT=8780 \
    ORCHESTRATOR_DAEMON_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1

USER ${UID}:${UID}
WORKDIR /var/lib/orchestrator
VOLUME ["/var/lib/orchestrator/spool", "/var/lib/orchestrator/db"]
EXPOSE 8780

# Liveness is progress: /healthz fails when the scheduler loop or the database writes stall.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['ORCHESTRATOR_STATUS_PORT'] + '/healthz', timeout=4)"]

# SIGTERM (docker stop) is a graceful stop: in-flight writes finish, the next start resumes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["orchestrator"]
CMD ["run"]
