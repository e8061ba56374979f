# syntax=docker/dockerfile:1
# rolewatch: a multi-stage build. The builder compiles the release binary; the runtime image is
# Debian slim with only the shared libraries the binary links (the Kafka client's librdkafka is
# built from source and links OpenSSL, libcurl and zlib), running as an unprivileged user.
#
#   docker build -t rolewatch .
#   docker run --rm -v "$PWD/deploy/rolewatch.toml:/etc/rolewatch/rolewatch.toml:ro" rolewatch

FROM rust:1.95-bookworm AS build
# cmake and the -dev packages build librdkafka (rdkafka's cmake-build feature).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libssl-dev libcurl4-openssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p rolewatch --bin rolewatch \
 && install -D -m 0755 target/release/rolewatch /out/rolewatch

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libcurl4 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rolewatch \
 && useradd --system --uid 10001 --gid rolewatch --home-dir /var/lib/rolewatch --shell /usr/sbin/nologin rolewatch \
 && install -d -o rolewatch -g rolewatch /var/lib/rolewatch /etc/rolewatch
COPY --from=build /out/rolewatch /usr/local/bin/rolewatch
USER 10001:10001
WORKDIR /var/lib/rolewatch
# [metrics] listen: /metrics, /healthz, /ready.
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/rolewatch"]
CMD ["run", "--config", "/etc/rolewatch/rolewatch.toml"]
