package config

import (
	"strings"
	"testing"
	"time"
)

// Off by default; endpoints from the environment or YAML (a list) turn the
// cluster on, with derived peer API address and validated TTL.
func TestClusterSettings(t *testing.T) {
	c := mustLoad(t, []string{"--api-secret", testSecret}, env(), hostIP())
	if len(c.EtcdEndpoints) != 0 || c.EtcdPrefix != "/orville/" || c.EtcdLeaseTTL != 10*time.Second {
		t.Fatalf("defaults: %q %q %v", c.EtcdEndpoints, c.EtcdPrefix, c.EtcdLeaseTTL)
	}

	c = mustLoad(t, []string{"--api-secret", testSecret, "--api-listen", ":8444"},
		env("ORVILLE_ETCD_ENDPOINTS", "http://10.0.0.5:2379, https://10.0.0.6:2379"), hostIP())
	if strings.Join(c.EtcdEndpoints, " ") != "http://10.0.0.5:2379 https://10.0.0.6:2379" {
		t.Fatalf("endpoints %q", c.EtcdEndpoints)
	}
	if c.AdvertiseAPI != "203.0.113.7:8444" || c.PeerAPIURL() != "https://203.0.113.7:8444" {
		t.Fatalf("advertised API %q", c.AdvertiseAPI)
	}

	path := writeFile(t, "api-secret: "+testSecret+"\netcd-endpoints:\n  - http://etcd-1:2379\n  - http://etcd-2:2379\netcd-lease-ttl: 5s\nadvertise-api: node-1.internal:444\n")
	c = mustLoad(t, []string{"--config", path}, env(), hostIP())
	if len(c.EtcdEndpoints) != 2 || c.EtcdLeaseTTL != 5*time.Second || c.PeerAPIURL() != "https://node-1.internal:444" {
		t.Fatalf("from YAML: %q %v %q", c.EtcdEndpoints, c.EtcdLeaseTTL, c.AdvertiseAPI)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--etcd-endpoints", "10.0.0.5:2379"}, "--etcd-endpoints: invalid value \"10.0.0.5:2379\": \"10.0.0.5:2379\" is not an http:// or https:// URL"},
		{[]string{"--etcd-endpoints", "http://e:2379", "--etcd-lease-ttl", "1s"}, "--etcd-lease-ttl (ORVILLE_ETCD_LEASE_TTL) must be whole seconds"},
		{[]string{"--etcd-endpoints", "http://e:2379", "--etcd-lease-ttl", "2500ms"}, "--etcd-lease-ttl"},
		{[]string{"--etcd-endpoints", "http://e:2379", "--advertise-api", "host"}, "--advertise-api (ORVILLE_ADVERTISE_API)"},
		{[]string{"--etcd-endpoints", "http://e:2379", "--api-listen", "127.0.0.1:0"}, "--advertise-api"},
	} {
		if msg := loadErr(t, append([]string{"--api-secret", testSecret}, tc.args...), env()); !strings.Contains(msg, tc.want) {
			t.Errorf("%q: error %q, want %q", tc.args, msg, tc.want)
		}
	}
}
