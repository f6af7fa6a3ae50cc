# flink-gitops daemon image. Build from the repository root:
#   docker build -t flink-gitops .
#   docker run -v /etc/flink-gitops:/etc/flink-gitops:ro -v flink-gitops-state:/var/lib/flink-gitops flink-gitops
# The JRE is only for `flink-gitops demo` (a local Flink); the daemon itself talks REST.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless git openssh-client gnupg \
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

USER flink-gitops
WORKDIR /var/lib/flink-gitops
ENV FLINK_GITOPS_STATE_DIR=/var/lib/flink-gitops \
    FLINK_GITOPS_HTTP__HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/flink-gitops"]
EXPOSE 8480
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8480/healthz', timeout=3)"]
ENTRYPOINT ["flink-gitops"]
CMD ["--config", "/etc/flink-gitops/config.yaml", "run"]
