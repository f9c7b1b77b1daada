# syntax=docker/dockerfile:1
#
# One image, two programs: `picard` (the MCP memory server, the default
# command) and `clientapp` (the web client; docker-compose.yml and
# render.yaml start it with their own command). Build:
#
#   docker build -t picard .
#
# The runtime stage is an empty filesystem (`scratch`) holding the two
# static binaries and the CA bundle they need for HTTPS (OpenAI-compatible
# APIs), run as an unprivileged user. There is no shell: health probes
# use `picard healthcheck` / `clientapp healthcheck`. Secrets come from the
# environment at run time, never from the image.

# Keep in step with the go directive in go.mod (deploy/dockerfile_test.go
# checks it).
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
# dependencies first, so source edits do not refetch modules
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# timetzdata: time zones work without /usr/share/zoneinfo in the image
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags timetzdata -ldflags="-s -w" -o /out/picard . && \
    go build -trimpath -tags timetzdata -ldflags="-s -w" -o /out/clientapp ./clientapp

FROM scratch AS runtime
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/picard /out/clientapp /usr/local/bin/
ENV PATH=/usr/local/bin
# 65532 is the conventional "nonroot" uid/gid of minimal images. WORKDIR
# after USER creates the directory owned by that user, so a fresh named
# volume mounted on /data is writable by it too.
USER 65532:65532
WORKDIR /tmp
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8001 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/picard", "healthcheck"]
CMD ["/usr/local/bin/picard", "serve", "--http", "0.0.0.0:8001", "--dir", "/data"]
