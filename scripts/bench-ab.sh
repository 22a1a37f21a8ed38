#!/usr/bin/env bash
# A/B load benchmark: alternates two orville binaries on one scenario, a fresh
# server per run, and prints one line per run (BENCHMARKS.md).
#
#   scripts/bench-ab.sh RUNS SECONDS "LOADTEST FLAGS" BIN_A [BIN_B ...]
#   scripts/bench-ab.sh 3 30 "--calls 1 --participants 25 --audio-publishers 5 --video-publishers 0" ./orville-old ./orville
#
# Runs inside a network namespace of its own (root; `ip netns`) so that the
# fixed --dev ports never meet another run; needs python3 for the JSON.
# LOADTEST=path runs that binary's loadtest against every server (the same
# clients for every build); by default each binary loads itself.
# SERVE_FLAGS_<n> (n = 1, 2, …: the binary's position) add flags to its serve.
set -euo pipefail
runs=$1 secs=$2 flags=$3
shift 3
ns=orv-bench-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip -n "$ns" link set lo up
printf '%-14s %3s %9s %9s %9s %9s %9s %8s %7s\n' build run 'µs/pkt' 'join p50' 'own p50' 'fwd p99' 'pkts/s' 'RSS MB' 'loss%'
for r in $(seq 1 "$runs"); do
	i=0
	for bin in "$@"; do
		i=$((i + 1))
		extra_var="SERVE_FLAGS_$i"
		out=$(mktemp -d)
		# shellcheck disable=SC2086
		ip netns exec "$ns" "$bin" serve --dev --log-level warn ${!extra_var:-} >"$out/srv.out" 2>"$out/srv.err" &
		pid=$!
		for _ in $(seq 50); do grep -q ORVILLE_API_SECRET= "$out/srv.err" 2>/dev/null && break; sleep 0.1; done
		secret=$(grep -o 'ORVILLE_API_SECRET=[^ ]*' "$out/srv.err" | head -1 | cut -d= -f2)
		# shellcheck disable=SC2086
		ORVILLE_API_SECRET=$secret ip netns exec "$ns" "${LOADTEST:-$bin}" loadtest --api https://127.0.0.1:8444 --insecure \
			$flags --duration "${secs}s" --server-pid "$pid" --json >"$out/lt.json" 2>/dev/null || true
		kill "$pid"; wait "$pid" 2>/dev/null || true
		python3 - "$out/lt.json" "$(basename "$bin")" "$r" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d.get("server", {})
lat = d.get("serverForwardingLatencyMs") or {}
print("%-14s %3s %9.2f %9.0f %9.0f %9.3f %9.0f %8.1f %7.3f" % (sys.argv[2], sys.argv[3],
    s.get("cpuMicrosPerPacket", 0), d["joinTimeMs"]["p50"], d.get("joinFromDialMs", {}).get("p50", 0),
    lat.get("p99", 0), d["packetsForwarded"]["receivedPerSecond"], s.get("peakRssBytes", 0) / 1e6,
    d["loss"]["totalPercent"]))
PY
		rm -rf "$out"
	done
done
