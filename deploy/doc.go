// Package deploy holds what an operator copies to run Orville — the systemd
// unit, the container recipe, the Kubernetes manifests, the Grafana dashboard
// and the Prometheus alert rules — and the tests that check them offline:
// systemd-analyze, podman, promtool, and the invariants between the files
// and the server's own configuration and metrics. It has no code of its own.
package deploy
