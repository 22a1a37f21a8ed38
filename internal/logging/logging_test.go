package logging

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func newTest(t *testing.T, level, format string) (*zap.Logger, zap.AtomicLevel, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	log, atom, err := New(level, format, zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	return log, atom, &buf
}

// jsonLines decodes every line of out as one JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestLevelFiltering(t *testing.T) {
	log, _, buf := newTest(t, "warn", "json")
	log.Debug("d")
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	recs := jsonLines(t, buf.String())
	if len(recs) != 2 || recs[0]["msg"] != "w" || recs[1]["msg"] != "e" {
		t.Errorf("got %v, want only warn and error", recs)
	}
}

func TestJSONOutput(t *testing.T) {
	log, _, buf := newTest(t, "info", "json")
	log.Info("call started", zap.String("eventId", "5bda4906"), zap.Int("port", 16384))
	log.Info("multi\nline \"quoted\" message")
	log.Error("failed", zap.Error(errTest("boom")))
	recs := jsonLines(t, buf.String())
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	r := recs[0]
	if r["level"] != "info" || r["msg"] != "call started" || r["eventId"] != "5bda4906" || r["port"] != float64(16384) {
		t.Errorf("record %v", r)
	}
	// ISO8601: 2006-01-02T15:04:05.000Z0700
	if ts, _ := r["ts"].(string); len(ts) < 20 || ts[4] != '-' || ts[10] != 'T' {
		t.Errorf("ts %v is not ISO8601", r["ts"])
	}
	if _, ok := r["caller"]; !ok {
		t.Error("no caller")
	}
	if _, ok := recs[2]["stacktrace"]; !ok || recs[2]["error"] != "boom" {
		t.Errorf("error record %v: want error and stacktrace", recs[2])
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

func TestRuntimeLevelChange(t *testing.T) {
	log, atom, buf := newTest(t, "info", "json")
	log.Debug("hidden")
	atom.SetLevel(zapcore.DebugLevel)
	log.Debug("shown")

	// The AtomicLevel is also the HTTP handler the caller mounts.
	srv := httptest.NewServer(atom)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader(`{"level":"error"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT level: %s", resp.Status)
	}
	log.Warn("hidden again")
	log.Error("shown again")

	resp, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Level string }
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.Level != "error" {
		t.Errorf("GET level = %q, %v", got.Level, err)
	}

	var msgs []string
	for _, r := range jsonLines(t, buf.String()) {
		msgs = append(msgs, r["msg"].(string))
	}
	if strings.Join(msgs, ",") != "shown,shown again" {
		t.Errorf("logged %v", msgs)
	}
}

func TestConsole(t *testing.T) {
	log, _, buf := newTest(t, "debug", "console")
	log.Debug("hello", zap.String("k", "v"))
	out := buf.String()
	if !strings.Contains(out, "DEBUG") || !strings.Contains(out, "hello") || !strings.Contains(out, `{"k": "v"}`) {
		t.Errorf("console output %q", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("console output has colour codes")
	}
}

func TestBadArguments(t *testing.T) {
	if _, _, err := New("loud", "json", nil); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Errorf("bad level: %v", err)
	}
	if _, _, err := New("info", "xml", nil); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("bad format: %v", err)
	}
}
