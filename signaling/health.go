package signaling

import "net/http"

// HealthHandler serves --health-listen: plain HTTP for orchestrators and load
// balancers that are not in --api-allow (a kubelet, a cloud health check).
// It answers GET /healthz (the process is up) and GET /readyz (it takes new
// calls) with the state alone — no counts, no ids, no secret needed — and
// 404 to everything else.
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if e := s.notReady(); e != nil {
			// The code (draining, no_capacity, cluster_unavailable), not the
			// message: that names settings and etcd errors.
			writeJSON(w, e.status, map[string]string{"status": e.code})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"status": "not_found"})
	})
	return mux
}
