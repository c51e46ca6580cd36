# The fixture site of the container test: two static pages served inside the compose network.
ARG BASE_IMAGE=local/debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox \
    && rm -rf /var/lib/apt/lists/*
COPY index.html /srv/index.html
EXPOSE 8000
CMD ["busybox", "httpd", "-f", "-p", "8000", "-h", "/srv"]
