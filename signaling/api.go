package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// maxBodyBytes bounds every request body: the largest legitimate one is a
// start-call request with 8 KiB of metadata.
const maxBodyBytes = 64 << 10

// apiRoute is one row of the API; the table is the single list of routes
// (the OpenAPI test checks openapi.yaml against it).
type apiRoute struct {
	pattern string
	access  access
	handler http.HandlerFunc
}

func (s *Server) apiRoutes() []apiRoute {
	routes := []apiRoute{
		{"POST /v1/calls", accessBearer, s.apiCreateCall},
		{"GET /v1/calls", accessBearer, s.apiListCalls},
		{"GET /v1/calls/{eventId}", accessBearer, s.apiGetCall},
		{"DELETE /v1/calls/{eventId}", accessBearer, s.apiEndCall},
		{"POST /v1/calls/{eventId}/participants", accessBearer, s.apiAddParticipant},
		{"DELETE /v1/calls/{eventId}/participants/{id}", accessBearer, s.apiRemoveParticipant},
		{"GET /v1/cluster", accessBearer, s.apiCluster},
		{"POST /v1/drain", accessBearer, s.apiDrain},
		{"GET /healthz", accessPublic, s.healthz},
		{"GET /readyz", accessSource, s.apiReadyz},
		{"GET /v1/openapi.yaml", accessSource, serveOpenAPI},
	}
	if h := s.cfg.MetricsHandler; h != nil {
		routes = append(routes, apiRoute{"GET /metrics", accessBearer, h.ServeHTTP})
	}
	if h := s.cfg.LogLevelHandler; h != nil {
		routes = append(routes, apiRoute{"GET /v1/log-level", accessBearer, h.ServeHTTP},
			apiRoute{"PUT /v1/log-level", accessBearer, h.ServeHTTP})
	}
	return routes
}

// APIHandler serves the messaging server's HTTP API (TCP 444, behind TLS).
func (s *Server) APIHandler() http.Handler {
	h := &apiHandler{s: s, mux: http.NewServeMux(), access: map[string]access{}}
	for _, rt := range s.apiRoutes() {
		h.mux.HandleFunc(rt.pattern, rt.handler)
		h.access[rt.pattern] = rt.access
	}
	return h
}

// apiHandler wraps the mux: access checks, metrics and logging happen once
// here, and the mux's plain-text 404/405 become JSON errors.
type apiHandler struct {
	s      *Server
	mux    *http.ServeMux
	access map[string]access // by pattern; unmatched requests need the secret
}

func (h *apiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	routed, pattern := h.mux.Handler(r)
	route := pattern
	if route == "" {
		route = "unmatched" // bounded metric label: never the raw path
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.s.log.Error("api handler panicked", zap.String("route", route), zap.Any("panic", v))
			if sw.status == 0 {
				writeError(sw, http.StatusInternalServerError, apiCodeInternal, "internal error")
			}
		}
		status := sw.code()
		h.s.cfg.Metrics.APIRequest(route, status)
		// Never the Authorization header, the body or a token: only what an
		// operator needs to see who asked for what.
		h.s.log.Debug("api request", zap.String("method", r.Method), zap.String("route", route),
			zap.Int("status", status), zap.Duration("duration", time.Since(start)),
			zap.String("source", r.RemoteAddr))
	}()

	a, ok := h.access[pattern]
	if !ok {
		// Unknown paths answer only to authorized callers, so probing from
		// elsewhere learns nothing about the API's shape.
		a = accessBearer
	}
	if !h.s.authorize(sw, r, a) {
		return
	}
	if pattern == "" {
		h.jsonMuxError(sw, r, routed)
		return
	}
	h.mux.ServeHTTP(sw, r)
}

// jsonMuxError runs the mux's own 404/405 handler to learn its verdict (and
// the Allow header), then answers in the API's error shape.
func (h *apiHandler) jsonMuxError(w http.ResponseWriter, r *http.Request, routed http.Handler) {
	c := &captureWriter{header: http.Header{}}
	routed.ServeHTTP(c, r)
	switch c.status {
	case http.StatusMethodNotAllowed:
		if allow := c.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeError(w, http.StatusMethodNotAllowed, apiCodeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, c.header.Get("Allow")))
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// Path cleaning ("/v1//calls"): pass the redirect through.
		http.Redirect(w, r, c.header.Get("Location"), c.status)
	default:
		writeError(w, http.StatusNotFound, apiCodeNotFound, "no such API route: "+r.URL.Path+" (see /v1/openapi.yaml)")
	}
}

// statusWriter remembers the status for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter swallows the mux's plain-text error page.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}

// errEmptyBody is returned by decodeBody for a request without a body.
var errEmptyBody = errors.New("empty body")

// bodyError is a request-body problem with its HTTP answer.
type bodyError struct {
	status  int
	code    string
	message string
}

func (e *bodyError) Error() string { return e.message }

// decodeBody reads exactly one JSON value into dst: at most maxBodyBytes,
// no unknown fields, nothing after the value. An empty body gives errEmptyBody
// so each route decides whether that is fine.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return errEmptyBody
		}
		return jsonBodyError(err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return &bodyError{http.StatusBadRequest, apiCodeBadRequest, "the body must hold one JSON object; found data after it"}
	default:
		if be := jsonBodyError(err); be.status == http.StatusRequestEntityTooLarge {
			return be
		}
		return &bodyError{http.StatusBadRequest, apiCodeBadRequest, "the body must hold one JSON object; found data after it"}
	}
}

// jsonBodyError turns a decoding error into a message that says what is wrong
// and where, without echoing the body back.
func jsonBodyError(err error) *bodyError {
	bad := func(format string, a ...any) *bodyError {
		return &bodyError{http.StatusBadRequest, apiCodeBadRequest, fmt.Sprintf(format, a...)}
	}
	var (
		maxErr  *http.MaxBytesError
		synErr  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return &bodyError{http.StatusRequestEntityTooLarge, apiCodeTooLarge,
			fmt.Sprintf("request body larger than %d bytes", maxErr.Limit)}
	case errors.As(err, &synErr):
		return bad("malformed JSON at byte %d: %v", synErr.Offset, synErr)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad("malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return bad("the body must be a JSON object, not %s", typeErr.Value)
		}
		return bad("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return bad("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return bad("malformed JSON: %v", err)
	}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "bool":
		return "true or false"
	case k == "string":
		return "a string"
	default:
		return "of another type"
	}
}

// writeBodyError answers a decodeBody failure.
func writeBodyError(w http.ResponseWriter, err error) {
	var be *bodyError
	if errors.As(err, &be) {
		writeError(w, be.status, be.code, be.message)
		return
	}
	writeError(w, http.StatusBadRequest, apiCodeBadRequest, err.Error())
}

// rfc3339 is the API's time format: UTC, whole seconds.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
