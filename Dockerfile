# syntax=docker/dockerfile:1
# The lineup server image: built from this workspace in one stage, run as an unprivileged user
# on a slim Debian in the next. Every setting is an environment variable (README,
# Configuration), passed at run time: DATABASE_URL, LINEUP_DATA_DIR, LINEUP_LISTEN,
# LINEUP_METRICS_LISTEN, LINEUP_LOG_FORMAT, RUST_LOG, OTEL_EXPORTER_OTLP_ENDPOINT,
# OTEL_SERVICE_NAME, PROVIDER_BASE_URL, PROVIDER_CLIENT_ID,
# PROVIDER_CLIENT_SECRET, PROVIDER_ACCOUNT_ID, PROVIDER_WEBHOOK_SECRET, AIRALO_BASE_URL,
# GIGS_BASE_URL, LINEUP_SECRET_KEY,
# SMTP_URL, MAIL_FROM, LINEUP_PUBLIC_URL, LINEUP_PORTAL_URL, LINEUP_TRUSTED_PROXY,
# LINEUP_SHUTDOWN_GRACE_SECS,
# SLACK_SIGNING_SECRET, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_API_BASE_URL,
# DISCORD_APPLICATION_ID, DISCORD_PUBLIC_KEY, DISCORD_BOT_TOKEN, DISCORD_API_BASE_URL,
# DISCORD_CLIENT_SECRET, TEAMS_APP_ID, TEAMS_APP_PASSWORD, TEAMS_OPENID_METADATA_URL,
# TEAMS_TOKEN_URL. Only the container defaults are set here.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Migrations, templates and static files are compiled into the binary; the caches only
# speed up rebuilds and the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin lineup \
    && cp target/release/lineup /usr/local/bin/lineup

FROM debian:bookworm-slim
# ca-certificates: the provider, Slack, Discord, Teams and SMTP are reached over TLS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/lineup --create-home lineup
COPY --from=build /usr/local/bin/lineup /usr/local/bin/lineup
USER 10001:10001
WORKDIR /var/lib/lineup
ENV LINEUP_LISTEN=0.0.0.0:8080 \
    LINEUP_METRICS_LISTEN=0.0.0.0:9090 \
    LINEUP_DATA_DIR=/var/lib/lineup \
    LINEUP_LOG_FORMAT=json
# 8080: portal, chat and provider webhooks. 9090: /metrics, for the cluster's Prometheus only.
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=6s --start-period=60s --retries=3 \
    CMD ["lineup", "healthcheck"]
ENTRYPOINT ["lineup"]
CMD ["serve"]
