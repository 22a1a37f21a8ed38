package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/orville/orville"

// The layers of the server, lowest first: a package may import packages of
// lower layers only (cmd/orville → signaling → roommgr → sfu).
var layers = []string{"sfu", "roommgr", "signaling"}

// clientSide are the packages that may hold media keys or plaintext: the
// Go client, its SFrame implementation, tools built on the client, and the
// web client (which only serves files, but speaks for the browser). Every
// other package of the module is server side; cmd/ links both (test-calling
// is a client).
var clientSide = []string{"e2ee", "client", "loadtest", "web"}

// standalone packages import no other package of the module. cluster (the
// etcd membership) is reached through signaling.Coordinator and gets its
// load figures as plain numbers from cmd/orville. events is the life-cycle
// event bus every source and subscriber shares. socks (the SOCKS5 relay)
// gets its routes and credential checks through socks.Config.Authenticate.
var standalone = []string{"e2ee", "web", "cluster", "events", "socks"}

// edges stand alone behind small interfaces: each may import only the
// packages listed for it (webhooks subscribes to events and knows nothing
// else of the server).
var edges = map[string][]string{
	"webhooks": {"events"},
}

// edgeViolation reports whether edge package name may not reach dep.
func edgeViolation(name, dep string) bool {
	for edge, allowed := range edges {
		if within(name, edge) && !inAny(dep, allowed) {
			return true
		}
	}
	return false
}

// pkg is what `go list -json` says of one package (non-test files only).
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// rel strips the module path: "sfu", "internal/config"; "" if outside.
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func within(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }

func inAny(p string, roots []string) bool {
	return slices.ContainsFunc(roots, func(r string) bool { return within(p, r) })
}

func layerOf(p string) int {
	for i, l := range layers {
		if within(p, l) {
			return i
		}
	}
	return -1
}

// violations applies the rules to a package graph and describes each broken
// one.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		name, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		server := !inAny(name, clientSide) && !within(name, "cmd")
		for _, d := range p.Deps {
			dep, ok := rel(d)
			if !ok {
				continue
			}
			direct := slices.Contains(p.Imports, d)
			how := "depends on"
			if direct {
				how = "imports"
			}
			switch {
			case server && (within(dep, "e2ee") || within(dep, "client")):
				// DESIGN.md: the server has no key input anywhere.
				out = append(out, name+" (server side) "+how+" "+dep)
			case inAny(name, standalone):
				out = append(out, name+" stands alone but "+how+" "+dep)
			case edgeViolation(name, dep):
				out = append(out, name+" stands alone (behind an interface) but "+how+" "+dep)
			case within(name, "turnproxy") && !within(dep, "internal"):
				out = append(out, "turnproxy stands alone but "+how+" "+dep)
			case within(name, "client") && !within(dep, "e2ee") && !within(dep, "internal"):
				out = append(out, "client must not depend on server package "+dep)
			case within(dep, "cmd"):
				out = append(out, name+" "+how+" the binary "+dep)
			case layerOf(name) >= 0 && layerOf(dep) > layerOf(name):
				out = append(out, name+" "+how+" the higher layer "+dep)
			}
		}
	}
	return out
}

func goList(t *testing.T) []pkg {
	t.Helper()
	// `go test` puts its own GOROOT/bin first in PATH.
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = "../.." // the module root, from internal/archtest
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestImportRules checks the module's real package graph, transitively:
// sfu, roommgr, signaling and turnproxy (every server package) never reach
// e2ee or client, e2ee, web and cluster stand alone, and the server layers
// import downwards only.
func TestImportRules(t *testing.T) {
	pkgs := goList(t)
	var names []string
	for _, p := range pkgs {
		n, _ := rel(p.ImportPath)
		names = append(names, n)
	}
	for _, must := range []string{"sfu", "roommgr", "signaling", "e2ee", "client", "cluster", "socks"} {
		if !slices.Contains(names, must) {
			t.Fatalf("go list did not report %s (got %v)", must, names)
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestRulesCatchViolations feeds the rules graphs that break them.
func TestRulesCatchViolations(t *testing.T) {
	m := func(s string) string { return module + "/" + s }
	for _, tc := range []struct {
		p    pkg
		want string
	}{
		{pkg{m("sfu"), []string{m("e2ee")}, []string{m("e2ee")}}, "sfu (server side) imports e2ee"},
		{pkg{m("signaling"), []string{m("x")}, []string{m("x"), m("client"), m("e2ee")}}, "signaling (server side) depends on client"},
		{pkg{m("turnproxy"), []string{m("e2ee")}, []string{m("e2ee")}}, "turnproxy (server side) imports e2ee"},
		{pkg{m("turnproxy"), []string{m("sfu")}, []string{m("sfu")}}, "turnproxy stands alone but imports sfu"},
		{pkg{m("socks"), []string{m("turnproxy")}, []string{m("turnproxy")}}, "socks stands alone but imports turnproxy"},
		{pkg{m("socks"), []string{m("internal/pionlog")}, []string{m("internal/pionlog")}}, "socks stands alone"},
		{pkg{m("roommgr/x"), []string{m("e2ee")}, []string{m("e2ee")}}, "roommgr/x (server side) imports e2ee"},
		{pkg{m("e2ee"), []string{m("internal/logging")}, []string{m("internal/logging")}}, "e2ee stands alone"},
		{pkg{m("client"), []string{m("signaling")}, []string{m("signaling")}}, "client must not depend on server package signaling"},
		{pkg{m("sfu"), []string{m("roommgr")}, []string{m("roommgr")}}, "sfu imports the higher layer roommgr"},
		{pkg{m("roommgr"), []string{m("signaling")}, []string{m("signaling")}}, "roommgr imports the higher layer signaling"},
		{pkg{m("web"), []string{m("client")}, []string{m("client")}}, "web stands alone"},
		{pkg{m("cluster"), []string{m("roommgr")}, []string{m("roommgr"), m("sfu")}}, "cluster stands alone"},
		{pkg{m("events"), []string{m("sfu")}, []string{m("sfu")}}, "events stands alone"},
		{pkg{m("webhooks"), []string{m("roommgr")}, []string{m("roommgr"), m("events")}}, "webhooks stands alone (behind an interface) but imports roommgr"},
	} {
		got := violations([]pkg{tc.p})
		if len(got) == 0 || !strings.HasPrefix(got[0], tc.want) {
			t.Errorf("%s → %v: got %q, want %q", tc.p.ImportPath, tc.p.Deps, got, tc.want)
		}
	}
	ok := []pkg{
		{m("signaling"), []string{m("roommgr"), m("sfu")}, []string{m("roommgr"), m("sfu")}},
		{m("client"), []string{m("e2ee")}, []string{m("e2ee")}},
		{m("cmd/orville"), []string{m("client"), m("signaling")}, []string{m("client"), m("e2ee"), m("signaling")}},
		{m("loadtest"), []string{m("client")}, []string{m("client"), m("e2ee")}},
		{m("signaling"), []string{m("cluster"), m("roommgr")}, []string{m("cluster"), m("roommgr"), m("sfu")}},
		{m("webhooks"), []string{m("events")}, []string{m("events")}},
		{m("roommgr"), []string{m("events"), m("sfu")}, []string{m("events"), m("sfu")}},
	}
	if got := violations(ok); len(got) != 0 {
		t.Errorf("allowed graph flagged: %q", got)
	}
}
