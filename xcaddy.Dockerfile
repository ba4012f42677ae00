# Builds Caddy with accessgate using xcaddy, the canonical way to add
# modules to Caddy:
#
#   docker build -f xcaddy.Dockerfile -t accessgate .
#   docker run -p 8080:8080 accessgate
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
EXPOSE 8080
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
