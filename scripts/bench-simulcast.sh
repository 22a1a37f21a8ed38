#!/usr/bin/env bash
# A/B of video scenarios with one binary: alternates flag sets on the same
# call shape, a fresh server per run, and prints one line per run, then the
# median and range per flag set (BENCHMARKS.md, "Video: simulcast").
#
#   scripts/bench-simulcast.sh BIN RUNS SECONDS "COMMON FLAGS" LABEL_A "FLAGS_A" LABEL_B "FLAGS_B" ...
#   scripts/bench-simulcast.sh ./orville 5 20 \
#       "--calls 1 --participants 10 --audio-publishers 10 --video-publishers 10 --tiles 4 --tile-height 180" \
#       simulcast "--simulcast" single ""
#
# Runs inside a network namespace of its own (root; `ip netns`) so that the
# fixed --dev ports never meet another run; needs python3 for the JSON.
set -euo pipefail
bin=$1 runs=$2 secs=$3 common=$4
shift 4
ns=orv-vbench-$$
ip netns add "$ns"
results=$(mktemp)
trap 'ip netns del "$ns"; rm -f "$results"' EXIT
ip -n "$ns" link set lo up
printf '%-10s %3s %12s %12s %9s %9s %9s %7s\n' set run 'video kb/s' 'kb/s max' 'CPU %' 'µs/pkt' 'pkts/s' 'loss%'
for r in $(seq 1 "$runs"); do
	args=("$@")
	for ((i = 0; i < ${#args[@]}; i += 2)); do
		label=${args[i]} flags=${args[i+1]}
		out=$(mktemp -d)
		ip netns exec "$ns" "$bin" serve --dev --log-level warn >"$out/srv.out" 2>"$out/srv.err" &
		pid=$!
		for _ in $(seq 50); do grep -q ORVILLE_API_SECRET= "$out/srv.err" 2>/dev/null && break; sleep 0.1; done
		secret=$(grep -o 'ORVILLE_API_SECRET=[^ ]*' "$out/srv.err" | head -1 | cut -d= -f2)
		# shellcheck disable=SC2086
		ORVILLE_API_SECRET=$secret ip netns exec "$ns" "$bin" loadtest --api https://127.0.0.1:8444 --insecure \
			$common $flags --duration "${secs}s" --server-pid "$pid" --json >"$out/lt.json" 2>/dev/null || true
		kill "$pid"; wait "$pid" 2>/dev/null || true
		python3 - "$out/lt.json" "$label" "$r" "$results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s, v = d.get("server") or {}, d["video"]["kbpsPerSubscriber"]
row = (v["p50"], v["max"], s.get("cpuPercent", 0), s.get("cpuMicrosPerPacket", 0),
       d["packetsForwarded"]["receivedPerSecond"], d["loss"]["totalPercent"])
print("%-10s %3s %12.0f %12.0f %9.1f %9.2f %9.0f %7.3f" % ((sys.argv[2], sys.argv[3]) + row))
with open(sys.argv[4], "a") as f:
    f.write(json.dumps([sys.argv[2]] + list(row)) + "\n")
PY
		rm -rf "$out"
	done
done
python3 - "$results" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\nmedian (min–max) over the runs")
names = ["video kb/s per receiver (p50)", "server CPU % of a core", "µs per forwarded packet", "packets/s out"]
for label in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == label]
    cols = [[r[1] for r in mine], [r[3] for r in mine], [r[4] for r in mine], [r[5] for r in mine]]
    print("%-10s " % label + "; ".join("%s %.1f (%.1f–%.1f)" % (n, statistics.median(c), min(c), max(c)) for n, c in zip(names, cols)))
PY
