# The compose stack's S3-compatible store: s3s-fs (the `s3s` project's server over a
# directory), built from crates.io. It is a small, single-node store for trying the stack
# and for tests; in production point ARTIFACT_STORE at AWS S3, or at Garage (a replicated
# S3-compatible store) with its own nodes, and drop this service.
ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
# A binary of the same version already built for this platform, put in prebuilt/ (as
# scripts/container-test does with the one scripts/test built), is used as it is.
COPY prebuilt/ /prebuilt/
RUN if [ -x /prebuilt/s3s-fs ]; then install /prebuilt/s3s-fs /usr/local/bin/s3s-fs; \
    else cargo install --locked s3s-fs --version 0.14.1 --features binary --root /usr/local; fi

FROM ${RUNTIME_IMAGE}
COPY --from=builder /usr/local/bin/s3s-fs /usr/local/bin/s3s-fs
RUN useradd --system --uid 10002 --home-dir /data s3 && mkdir -p /data && chown s3 /data
USER s3
EXPOSE 8014
# Buckets are directories: the one named by S3_BUCKET is made before the server starts.
CMD ["sh", "-c", "mkdir -p \"/data/${S3_BUCKET}\" && exec s3s-fs --host 0.0.0.0 --port 8014 --access-key \"$S3_ACCESS_KEY\" --secret-key \"$S3_SECRET_KEY\" /data"]
