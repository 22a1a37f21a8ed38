package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// metricRefs are the orville_* (and up) series names an expression reads.
var metricRef = regexp.MustCompile(`\b(orville_[a-z_]+)\b`)

func checkMetricNames(t *testing.T, where string, exprs []string, known map[string]bool) {
	t.Helper()
	for _, e := range exprs {
		for _, m := range metricRef.FindAllString(e, -1) {
			if !known[m] {
				t.Errorf("%s uses %s, which the server does not export (in %q)", where, m, e)
			}
		}
	}
}

// The alert rules pass `promtool check rules`, fire as alerts_test.yaml
// expects (`promtool test rules`), read only metrics the server exports, and
// the example scrape configuration is valid Prometheus configuration.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "alerts_test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "observability"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	b, err := os.ReadFile("observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	known := metricNames(t)
	var exprs []string
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
			alerts[r.Alert] = true
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a severity, a summary and a description", r.Alert)
			}
		}
	}
	checkMetricNames(t, "alerts.yaml", exprs, known)
	// The list: no free port pairs, forwarding latency, drops, draining.
	for _, a := range []string{"OrvilleNoFreePortPairs", "OrvilleForwardingLatencyHigh", "OrvillePacketDrops", "OrvilleDraining", "OrvilleWebhookEventsDropped"} {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}

	// The scrape example, with its secret file made real.
	dir := t.TempDir()
	secret := filepath.Join(dir, "orville-api-secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	prom, err := os.ReadFile("observability/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(strings.ReplaceAll(string(prom), "/etc/prometheus/orville-api-secret", secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

// The Grafana dashboard is well-formed (unique panel ids, the datasource a
// variable, nothing overlapping), every query parses as PromQL and reads
// only metrics the server exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID, Title    string
		SchemaVersion int
		Templating    struct {
			List []struct{ Name, Type string }
		}
		Panels []struct {
			ID         int
			Title      string
			Datasource struct{ UID string }
			GridPos    struct{ X, Y, W, H int }
			Targets    []struct {
				RefID, Expr string
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 || len(d.Panels) < 10 {
		t.Fatalf("dashboard %q/%q schema %d, %d panels", d.UID, d.Title, d.SchemaVersion, len(d.Panels))
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Fatalf("template variables %v: want a datasource and an instance variable", vars)
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	var exprs []string
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q: datasource %q, %d targets, size %dx%d", p.Title, p.Datasource.UID, len(p.Targets), p.GridPos.W, p.GridPos.H)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if o, taken := cells[[2]int{x, y}]; taken {
					t.Fatalf("panels %q and %q overlap", o, p.Title)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	checkMetricNames(t, "grafana-dashboard.json", exprs, metricNames(t))

	// Every query parses: as recording rules, Grafana's variables replaced.
	promtool := tool(t, "promtool")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	sort.Strings(exprs)
	for i, e := range exprs {
		e = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(e)
		q, _ := json.Marshal(e)
		fmt.Fprintf(&rules, "      - record: dashboard:q%d\n        expr: %s\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s", err, out)
	}
}
