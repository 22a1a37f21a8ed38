package signaling

import (
	_ "embed" // for the OpenAPI document
	"net/http"
)

// openAPIDoc is the API's contract, kept in the repo next to the code and
// served at GET /v1/openapi.yaml; TestOpenAPICoversRoutes keeps the two in
// step.
//
//go:embed openapi.yaml
var openAPIDoc []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	// application/yaml is registered by RFC 9512.
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
}
