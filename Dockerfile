# tessera container image.
#
#   docker build -t tessera .
#   docker compose up            # PostgreSQL + tessera, key generated on first start
#
# Build stage: compile the release binary. Dependencies are built in their own
# layer from Cargo.toml + Cargo.lock alone, so editing src/ does not rebuild them.
FROM rust:1-bookworm AS build

# libpq-dev: diesel's postgres backend links libpq. libssl-dev and
# pkg-config: webauthn-rs (passkeys) verifies with OpenSSL (the rust image
# has both already; named so the build does not depend on it). aws-lc-sys (jsonwebtoken's
# aws_lc_rs backend) builds its C code with the compiler already in this image
# (its cc builder, with pregenerated bindings): no cmake, clang or nasm needed.
# Packages are unpinned on purpose (here and below): the Debian release fixes
# their versions, and unpinned they still take security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

# Always build AWS-LC from the bundled source instead of probing the system's
# OpenSSL (which it would reject anyway): same result on every build host.
ENV AWS_LC_SYS_USE_SYSTEM=0

WORKDIR /build

# 1. Dependencies only, against placeholder sources.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# 2. The real sources. migrations/ is embedded into the binary at compile time
#    (diesel's embed_migrations!), so it must be here for the build. Touch the
#    crate roots so cargo sees them as newer than the placeholder build.
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && cp target/release/tessera /usr/local/bin/tessera

# Runtime stage: Debian slim with libpq, OpenSSL (webauthn-rs) and CA
# certificates, running as a non-root user.
FROM debian:bookworm-slim

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Non-root user, and /keys owned by it: a fresh named volume mounted at /keys
# takes this directory's owner and mode, so the entrypoint can write the key.
RUN groupadd --system --gid 10001 tessera \
    && useradd --system --uid 10001 --gid tessera --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tessera \
    && mkdir /keys \
    && chown tessera:tessera /keys \
    && chmod 0700 /keys

COPY --from=build /usr/local/bin/tessera /usr/local/bin/tessera
COPY docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The executable bit may be lost on checkout (e.g. on Windows): set it here.
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh

# Listen on all interfaces inside the container; sign with a key kept in the
# /keys volume (generated on first start by the entrypoint, never in the image).
# (A path, not a secret.)
# hadolint ignore=DL3064
ENV BIND_ADDR=0.0.0.0:8080 \
    JWT_PRIVATE_KEY_PATH=/keys/private.pem \
    RUST_LOG=info

USER 10001:10001
EXPOSE 8080

# GET /healthz (process alive, no DB) with perl-base, which is Essential in
# Debian and so already in the slim image: no curl and its libraries needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["perl", "-MIO::Socket::INET", "-e", "my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:8080', Timeout => 3) or exit 1; print {$s} qq{GET /healthz HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n}; exit((<$s> // '') =~ m{^HTTP/1[.][01] 200 } ? 0 : 1);"]

ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["serve"]
