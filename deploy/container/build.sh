#!/bin/sh
# Builds the Orville container image from the static binary, with no base
# image to download (FROM scratch): podman, else buildah.
#
#   deploy/container/build.sh [IMAGE]     default: localhost/orville:<version>
#
# VERSION overrides the version stamped into the binary (default: git describe);
# GOFLAGS defaults to -trimpath (set it empty to reuse a build cache, as the
# tests do).
set -eu
: "${GOFLAGS=-trimpath}"
export GOFLAGS
root=$(cd "$(dirname "$0")/../.." && pwd)
version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
image=${1:-localhost/orville:$version}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

CGO_ENABLED=0 go build -C "$root" -ldflags "-s -w -X main.version=$version" -o "$ctx/orville" ./cmd/orville
# 443 and 444 as a non-root user: a file capability, which the image keeps.
# (It needs a runtime that allows privilege gain: not --security-opt
# no-new-privileges, not allowPrivilegeEscalation: false.)
setcap cap_net_bind_service=+ep "$ctx/orville"
# CA roots for the outbound HTTPS of webhooks; an empty file if the host has none.
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
else
	: >"$ctx/ca-certificates.crt"
fi
cp "$root/deploy/container/Containerfile" "$ctx/"

if command -v podman >/dev/null 2>&1; then
	podman build --pull=never --layers=false -t "$image" -f "$ctx/Containerfile" "$ctx" >&2
else
	buildah bud --pull-never --layers=false -t "$image" -f "$ctx/Containerfile" "$ctx" >&2
fi
echo "$image"
