# One image for every role: the command is `serve`, `worker`, `all`, `dev`, `migrate` or
# `keys …`. Build: `docker build -t control-plane .`; `compose.yaml` runs the whole system.
#
# The base images are the public ones; override them to build offline from local images
# (scripts/container-test does): --build-arg RUST_IMAGE=… --build-arg RUNTIME_IMAGE=…
ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Dependencies first, in a layer of their own: it is rebuilt only when Cargo.lock changes.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches migrations \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for bench in $(sed -n '/^\[\[bench\]\]/,/^name/s/^name = "\(.*\)"/\1/p' Cargo.toml); do \
           echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --release --locked --bin control-plane \
    && rm -rf src benches
COPY src src
COPY templates templates
COPY migrations migrations
COPY benches benches
RUN touch src/main.rs src/lib.rs build.rs \
    && cargo build --release --locked --bin control-plane \
    && cp target/release/control-plane /usr/local/bin/control-plane

FROM ${RUNTIME_IMAGE}
# Chromium for browser jobs, fonts for the world's common scripts (Latin, Greek, Cyrillic,
# Arabic, Hebrew, Indic, Thai, CJK, emoji), CA certificates, and tini to reap the zombies
# Chromium's helpers leave behind.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        chromium ca-certificates tini \
        fonts-liberation fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --create-home --home-dir /var/lib/control-plane --uid 10001 control-plane \
    && mkdir -p /var/lib/control-plane/artifacts \
    && chown -R control-plane:control-plane /var/lib/control-plane
COPY --from=builder /usr/local/bin/control-plane /usr/local/bin/control-plane
USER control-plane
WORKDIR /var/lib/control-plane
ENV BIND=0.0.0.0:8080 \
    DATA_DIR=/var/lib/control-plane \
    ARTIFACT_DIR=/var/lib/control-plane/artifacts \
    CHROME_PATH=/usr/bin/chromium \
    LOG_FORMAT=json
EXPOSE 8080
# No VOLUME: an anonymous one was left behind by every `down` and `up`. Mount what should
# outlive the container (compose names its volumes); in production, artifacts belong in a
# bucket (ARTIFACT_STORE=s3://…) and the container keeps nothing.
# Healthy when the API answers /health, or (workers serve no HTTP) the worker reported lately.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["control-plane", "probe"]
# tini is PID 1: it forwards SIGTERM to control-plane (which lets jobs finish within
# SHUTDOWN_GRACE) and reaps orphaned processes.
ENTRYPOINT ["tini", "--", "control-plane"]
CMD ["serve"]
