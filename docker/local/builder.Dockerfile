# A stand-in for the public Rust image, for machines without a registry: Debian from a local
# base image, with the Rust toolchain of the machine that builds it (copied into the context
# by scripts/container-test) and what crates that compile C need.
ARG BASE_IMAGE=local/debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc libc6-dev make pkg-config ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
ENV PATH=/usr/local/rust/bin:$PATH \
    CARGO_HOME=/usr/local/cargo
RUN rustc --version && cargo --version
