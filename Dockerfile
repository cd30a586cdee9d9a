# The jinglectl agent as a container (OCI image).
#
#   docker build -t jinglectl .
#   docker run -d --name jinglectl \
#     -v /srv/jinglectl/config.toml:/etc/jinglectl/config.toml:ro \
#     -v /srv/jinglectl/password:/run/secrets/jinglectl-password:ro \
#     -v /srv/jinglectl/incoming:/var/lib/jinglectl/incoming \
#     -v /srv/jinglectl/run:/run/jinglectl \
#     -p 127.0.0.1:9110:9110 jinglectl
#
# The configuration (docs/jinglectl.md) names the account, the password
# file, receive.dir = "/var/lib/jinglectl/incoming", agent.socket =
# "/run/jinglectl/agent.sock" (mount /run/jinglectl to use send --agent,
# status and cancel from the host) and, for Prometheus,
# agent.metrics = "0.0.0.0:9110".
#
# Direct SOCKS5 candidates and ICE host candidates carry the container's
# addresses: with bridge networking peers outside the host reach it only
# through the server's SOCKS5 proxy or TURN. Use --network host for direct
# transfers.

# Build stage: a static binary (no cgo), stamped with the commit.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG REVISION=""
ARG REVISION_TIME=""
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.linkedRevision=${REVISION} -X main.linkedTime=${REVISION_TIME}" \
      -o /out/jinglectl ./cmd/jinglectl

# Run stage: no shell, no package manager; CA certificates for the
# server's TLS certificate; an unprivileged user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jinglectl /usr/local/bin/jinglectl
USER nonroot:nonroot
VOLUME ["/var/lib/jinglectl/incoming", "/run/jinglectl"]
EXPOSE 9110
ENV JINGLECTL_CONFIG=/etc/jinglectl/config.toml \
    XDG_RUNTIME_DIR=/run/jinglectl
ENTRYPOINT ["/usr/local/bin/jinglectl"]
CMD ["agent", "--log-level", "info"]
