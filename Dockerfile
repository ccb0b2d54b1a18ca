# syntax=docker/dockerfile:1
# Multi-stage build: compile in the official Rust image, run in a slim Debian image as a
# non-root user. reqwest uses rustls, so the runtime needs only CA certificates (no OpenSSL).

FROM rust:1.95-slim-bookworm AS build
# The slim image has gcc but not make, which jemalloc's build (tikv-jemalloc-sys) runs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
# The workspace's second crate (the Salesforce emulator, for `sfgate demo`) gets a stub too.
COPY Cargo.toml Cargo.lock ./
COPY crates/sfgate-emulator/Cargo.toml ./crates/sfgate-emulator/
RUN mkdir src crates/sfgate-emulator/src && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/sfgate-emulator/src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src crates/sfgate-emulator/src target/release/deps/sfgate* target/release/deps/libsfgate* target/release/.fingerprint/sfgate*
COPY src ./src
COPY crates ./crates
COPY templates ./templates
COPY assets ./assets
RUN cargo build --release --locked && strip target/release/sfgate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sfgate
COPY --from=build /src/target/release/sfgate /usr/local/bin/sfgate
USER 10001:10001
# Platforms such as Heroku, Cloud Run and Fly set PORT; HOST 0.0.0.0 listens on all interfaces.
ENV HOST=0.0.0.0 PORT=3000 LOG_FORMAT=json
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/sfgate"]
CMD ["serve"]
