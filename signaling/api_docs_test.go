package signaling

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

func TestOpenAPIDocument(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newAPIFixture(t, 43070, nil)
	defer f.close()

	r := f.do("GET", "/v1/openapi.yaml", "", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/yaml" || !bytes.Equal(r.body, openAPIDoc) {
		t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI    string                    `yaml:"openapi"`
		Paths      map[string]map[string]any `yaml:"paths"`
		Components struct {
			SecuritySchemes map[string]map[string]any `yaml:"securitySchemes"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" || doc.Components.SecuritySchemes["apiSecret"]["scheme"] != "bearer" {
		t.Fatalf("openapi %q, schemes %v", doc.OpenAPI, doc.Components.SecuritySchemes)
	}
	// Every route is documented and every documented operation is a route.
	routes := map[string]bool{}
	for _, rt := range f.srv.apiRoutes() {
		routes[rt.pattern] = true
		method, path, _ := strings.Cut(rt.pattern, " ")
		if doc.Paths[path][strings.ToLower(method)] == nil {
			t.Errorf("route %q is not in openapi.yaml", rt.pattern)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" && !routes[strings.ToUpper(method)+" "+path] {
				t.Errorf("openapi.yaml documents %s %s, which is not a route", method, path)
			}
		}
	}
	// The documented reference example is the reference answer.
	var ref, ex map[string]any
	_ = json.Unmarshal([]byte(referenceStartCall), &ref)
	op := doc.Paths["/v1/calls"]["post"].(map[string]any)
	content := op["responses"].(map[string]any)["201"].(map[string]any)["content"].(map[string]any)
	ex = content["application/json"].(map[string]any)["examples"].(map[string]any)["reference"].(map[string]any)["value"].(map[string]any)
	if !reflect.DeepEqual(ex, ref) {
		t.Fatalf("reference example %v, want %v", ex, ref)
	}
}

// The operator routes sit behind the same checks as the rest of the API.
func TestAPIOperatorRoutes(t *testing.T) {
	defer goleak.VerifyNone(t)
	level := zap.NewAtomicLevel()
	f := newAPIFixture(t, 43080, func(c *Config) { c.LogLevelHandler = level })
	defer f.close()
	if r := f.do("PUT", "/v1/log-level", "", []byte(`{"level":"debug"}`)); r.status != http.StatusUnauthorized {
		t.Fatalf("log level without the secret: %d", r.status)
	}
	if level.Level() != zap.InfoLevel {
		t.Fatal("an unauthenticated request changed the level")
	}
	if r := f.authed("PUT", "/v1/log-level", `{"level":"debug"}`); r.status != http.StatusOK || level.Level() != zap.DebugLevel {
		t.Fatalf("PUT level: %d %s, level %v", r.status, r.body, level.Level())
	}
	if r := f.authed("GET", "/metrics", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), "orville_calls") {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/metrics", "Bearer wrong", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("metrics with a wrong secret: %d", r.status)
	}
}
