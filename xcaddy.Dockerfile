# Builds Caddy with accessgate using xcaddy, the canonical way to add
# modules to Caddy:
#
#   docker build -f xcaddy.Dockerfile -t accessgate .
#   docker run -p 8080:8080 -e ACCESSGATE_REDIS=redis://redis.example:6379/0 accessgate
#
# The image runs Caddyfile.example, whose environment placeholders set the
# Redis URL (ACCESSGATE_REDIS), the key prefix (ACCESSGATE_KEY_PREFIX) and
# the gateway's listen address (ACCESSGATE_BIND).
#
# Stage 1: the official builder image compiles Caddy with this module.
FROM caddy:2.11-builder AS builder
WORKDIR /src/accessgate
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN xcaddy build --output /usr/bin/caddy --with github.com/accessgate/accessgate=/src/accessgate

# Stage 2: the official runtime image with the new binary.
FROM caddy:2.11
COPY --from=builder /usr/bin/caddy /usr/bin/caddy
COPY Caddyfile.example /etc/caddy/Caddyfile
# The gateway on :8080 listens on every interface of the container, so that
# a published port reaches it; the stand-in upstream on :9000 stays on
# 127.0.0.1.
ENV ACCESSGATE_BIND=0.0.0.0
EXPOSE 8080
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
