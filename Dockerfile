# syntax=docker/dockerfile:1
# One image with every server binary of Uchat: uchat-server (all in one process), the three
# services, the gateway, migrate, and uchat-health (the containers' health check). docker-compose.yml runs the split stack from it.

# --- build -----------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Only the server binaries: the desktop client and its GUI libraries stay out of the image.
RUN cargo build --release --locked \
        --bin uchat-server --bin account-svc --bin social-svc --bin message-svc \
        --bin gateway --bin migrate --bin uchat-health \
 && mkdir /out \
 && cp target/release/uchat-server target/release/account-svc target/release/social-svc \
       target/release/message-svc target/release/gateway target/release/migrate \
       target/release/uchat-health /out/

# --- run -------------------------------------------------------------------------------
FROM debian:bookworm-slim
# A user of its own, no shell, no home; the directories it writes belong to it (a new named
# volume mounted there takes the directory's owner).
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin uchat \
 && mkdir -p /data /keys \
 && chown uchat:uchat /data /keys \
 && chmod 0700 /data /keys
COPY --from=build /out/ /usr/local/bin/
# Numeric, so the host and Kubernetes can check it is not root without /etc/passwd.
USER 10001:10001
ENV UCHAT_DATA_DIR=/data \
    UCHAT_LISTEN=0.0.0.0:7878 \
    UCHAT_LOG_FORMAT=text
EXPOSE 7878
# Without a command: the whole server in one process, on SQLite in /data.
CMD ["uchat-server"]
