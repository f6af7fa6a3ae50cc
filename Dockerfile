# flink-gitops daemon image. Not built here (no Docker engine on these machines): CI lints it
# with hadolint (tests/deploy/test_dockerfile.py). Build from the repository root:
#   docker build -t flink-gitops .
#   docker run -v /etc/flink-gitops:/etc/flink-gitops:ro -v flink-gitops-state:/var/lib/flink-gitops \
#     -p 127.0.0.1:8480:8480 flink-gitops
# Secrets: {credential: <name>} in the config reads /run/secrets/<name> here (Docker or Compose
# secrets), so systemd/config.yaml works unchanged. The daemon talks REST to Flink: no JRE.
FROM python:3.11-slim-bookworm

# git for the Git source, ssh for ssh:// remotes, gpg for signed commits.
# DL3008 (pin apt versions): Debian drops superseded versions from its mirrors, so a pinned
# version breaks the build at the next point release; the lock pins everything Python.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client gnupg \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/flink-gitops \
      --shell /usr/sbin/nologin flink-gitops

WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/runtime.lock ./requirements/
COPY daemon ./daemon
# Only what the lock pins, by hash; the build backend comes from the lock too (no isolation).
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.lock \
 && pip install --no-cache-dir --no-deps --no-build-isolation . \
 && rm -rf /src

# numeric, so that a runtime without the image's /etc/passwd still runs it unprivileged
USER 10001:10001
WORKDIR /var/lib/flink-gitops
ENV FLINK_GITOPS_STATE_DIR=/var/lib/flink-gitops \
    FLINK_GITOPS_HTTP__HOST=0.0.0.0 \
    CREDENTIALS_DIRECTORY=/run/secrets \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/flink-gitops"]
EXPOSE 8480
# slim has no curl: Python's urllib; /healthz answers while the process lives (no token needed)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8480/healthz', timeout=3)"]
# SIGTERM parks the action in flight at its last recorded step; give it time (docker stop -t 660).
STOPSIGNAL SIGTERM
ENTRYPOINT ["flink-gitops"]
CMD ["--config", "/etc/flink-gitops/config.yaml", "run"]
