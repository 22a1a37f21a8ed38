package deploy

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Just the fields the invariants read; the rest of each object is decoded
// loosely (no cluster here to validate against its schema).
type k8sMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type k8sObject struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path   string `yaml:"path"`
		Port   int    `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
}

type daemonSetSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	UpdateStrategy struct {
		Type          string `yaml:"type"`
		RollingUpdate struct {
			MaxSurge int `yaml:"maxSurge"`
		} `yaml:"rollingUpdate"`
	} `yaml:"updateStrategy"`
	Template struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			HostNetwork                   bool   `yaml:"hostNetwork"`
			DNSPolicy                     string `yaml:"dnsPolicy"`
			TerminationGracePeriodSeconds int    `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
				RunAsUser    int  `yaml:"runAsUser"`
			} `yaml:"securityContext"`
			Containers []struct {
				Name  string   `yaml:"name"`
				Image string   `yaml:"image"`
				Args  []string `yaml:"args"`
				Env   []struct {
					Name      string `yaml:"name"`
					ValueFrom struct {
						SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
					} `yaml:"valueFrom"`
				} `yaml:"env"`
				Ports []struct {
					ContainerPort int    `yaml:"containerPort"`
					Protocol      string `yaml:"protocol"`
				} `yaml:"ports"`
				ReadinessProbe  probe `yaml:"readinessProbe"`
				LivenessProbe   probe `yaml:"livenessProbe"`
				SecurityContext struct {
					ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
					Capabilities           struct {
						Drop []string `yaml:"drop"`
						Add  []string `yaml:"add"`
					} `yaml:"capabilities"`
				} `yaml:"securityContext"`
				VolumeMounts []struct {
					Name      string `yaml:"name"`
					MountPath string `yaml:"mountPath"`
				} `yaml:"volumeMounts"`
			} `yaml:"containers"`
			Volumes []struct {
				Name      string `yaml:"name"`
				ConfigMap struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type networkPolicySpec struct {
	PodSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"podSelector"`
	PolicyTypes []string `yaml:"policyTypes"`
	Ingress     []struct {
		From []struct {
			IPBlock *struct {
				CIDR string `yaml:"cidr"`
			} `yaml:"ipBlock"`
			PodSelector       *yaml.Node `yaml:"podSelector"`
			NamespaceSelector *yaml.Node `yaml:"namespaceSelector"`
		} `yaml:"from"`
		Ports []struct {
			Protocol string `yaml:"protocol"`
			Port     int    `yaml:"port"`
			EndPort  int    `yaml:"endPort"`
		} `yaml:"ports"`
	} `yaml:"ingress"`
}

// readManifests decodes every document of the kustomization's resources.
func readManifests(t *testing.T) map[string]*k8sObject {
	t.Helper()
	var kust struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &kust); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(kust.Resources, base) {
			t.Errorf("%s is not listed in kustomization.yaml", f)
		}
	}
	objs := map[string]*k8sObject{}
	for _, r := range kust.Resources {
		b, err := os.ReadFile(filepath.Join("kubernetes", r))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: an object without apiVersion, kind or name: %+v", r, o)
			}
			if o.Kind != "Namespace" && o.Metadata.Namespace != kust.Namespace {
				t.Errorf("%s %s is in namespace %q, not %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace, kust.Namespace)
			}
			if _, dup := objs[o.Kind]; dup {
				t.Fatalf("two %s objects", o.Kind)
			}
			objs[o.Kind] = &o
		}
	}
	for kind, version := range map[string]string{"Namespace": "v1", "Secret": "v1", "ConfigMap": "v1",
		"DaemonSet": "apps/v1", "NetworkPolicy": "networking.k8s.io/v1"} {
		if objs[kind] == nil || objs[kind].APIVersion != version {
			t.Fatalf("%s: apiVersion %q, want %q", kind, objs[kind].APIVersion, version)
		}
	}
	return objs
}

// The manifests hold together with each other and with the server: the
// ConfigMap is a valid Orville configuration, the pod runs it on the host's
// network with the secret from the Secret, readiness on the health listener,
// a grace period above the drain, and the NetworkPolicy opens what the
// configuration listens on, 444 only to the messaging server.
func TestKubernetesManifests(t *testing.T) {
	objs := readManifests(t)
	secret := objs["Secret"]

	// The ConfigMap's settings load as orville's, with the Secret's values.
	cfgFile := filepath.Join(t.TempDir(), "orville.yaml")
	if err := os.WriteFile(cfgFile, []byte(objs["ConfigMap"].Data["orville.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, cfgFile, map[string]string{"ORVILLE_API_SECRET": secret.StringData["api-secret"],
		"ORVILLE_WEBHOOK_SECRET": secret.StringData["webhook-secret"]})
	port := func(addr string) int {
		ap, err := netip.ParseAddrPort("0.0.0.0" + addr)
		if err != nil {
			t.Fatalf("listen address %q: %v", addr, err)
		}
		return int(ap.Port())
	}
	if cfg.HealthListen == "" {
		t.Fatal("the ConfigMap has no health-listen: the kubelet cannot probe readiness")
	}

	var ds daemonSetSpec
	if err := objs["DaemonSet"].Spec.Decode(&ds); err != nil {
		t.Fatal(err)
	}
	pod := ds.Template.Spec
	if !pod.HostNetwork || pod.DNSPolicy != "ClusterFirstWithHostNet" {
		t.Errorf("hostNetwork %v, dnsPolicy %q: the media range needs the host's network", pod.HostNetwork, pod.DNSPolicy)
	}
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	if grace <= cfg.DrainTimeout+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v is not above the drain timeout %v and the webhook flush", grace, cfg.DrainTimeout)
	}
	if ds.UpdateStrategy.Type != "RollingUpdate" || ds.UpdateStrategy.RollingUpdate.MaxSurge != 0 {
		t.Errorf("update strategy %+v: a new pod must wait for the old one's ports", ds.UpdateStrategy)
	}
	for k, v := range ds.Selector.MatchLabels {
		if ds.Template.Metadata.Labels[k] != v {
			t.Errorf("the selector's %s=%s is not on the pod", k, v)
		}
	}
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser != 65532 {
		t.Errorf("pod security context %+v: want non-root 65532, the image's user", pod.SecurityContext)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !strings.Contains(c.Image, "orville") || !slices.Equal(c.Args, []string{"serve", "--config", "/etc/orville/orville.yaml"}) {
		t.Errorf("image %q args %q", c.Image, c.Args)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap.Name == objs["ConfigMap"].Metadata.Name && m.MountPath == "/etc/orville" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Error("the ConfigMap is not mounted at /etc/orville")
	}
	secrets := map[string]string{}
	for _, e := range c.Env {
		if r := e.ValueFrom.SecretKeyRef; r.Name != "" {
			if r.Name != secret.Metadata.Name || secret.StringData[r.Key] == "" {
				t.Errorf("env %s refers to %s/%s, which the Secret does not hold", e.Name, r.Name, r.Key)
			}
			secrets[e.Name] = r.Key
		}
	}
	if secrets["ORVILLE_API_SECRET"] != "api-secret" || secrets["ORVILLE_WEBHOOK_SECRET"] != "webhook-secret" {
		t.Errorf("secrets in the environment: %v", secrets)
	}
	if rp := c.ReadinessProbe.HTTPGet; rp.Path != "/readyz" || rp.Port != port(cfg.HealthListen) || rp.Scheme != "HTTP" {
		t.Errorf("readiness probe %+v, want GET /readyz on the health listener %s", rp, cfg.HealthListen)
	}
	if lp := c.LivenessProbe.HTTPGet; lp.Path != "/healthz" || lp.Port != port(cfg.HealthListen) {
		t.Errorf("liveness probe %+v, want GET /healthz on the health listener", lp)
	}
	sc := c.SecurityContext
	if !sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []string{"NET_BIND_SERVICE"}) {
		t.Errorf("container security context %+v", sc)
	}
	declared := map[int]bool{}
	for _, p := range c.Ports {
		declared[p.ContainerPort] = true
	}
	for _, p := range []int{port(cfg.APIListen), port(cfg.TCPListen), port(cfg.SOCKSListen), port(cfg.HealthListen)} {
		if !declared[p] {
			t.Errorf("container port %d (from the configuration) is not declared", p)
		}
	}

	// The NetworkPolicy.
	var np networkPolicySpec
	if err := objs["NetworkPolicy"].Spec.Decode(&np); err != nil {
		t.Fatal(err)
	}
	for k, v := range np.PodSelector.MatchLabels {
		if ds.Template.Metadata.Labels[k] != v {
			t.Errorf("the NetworkPolicy selects %s=%s, which the pod does not have", k, v)
		}
	}
	if !slices.Equal(np.PolicyTypes, []string{"Ingress"}) {
		t.Errorf("policy types %q", np.PolicyTypes)
	}
	first, last := cfg.MediaPortRange()
	open := map[string]bool{}
	apiFrom := 0
	for _, rule := range np.Ingress {
		for _, p := range rule.Ports {
			key := p.Protocol + " " + itoa(p.Port)
			if p.EndPort != 0 {
				key += "-" + itoa(p.EndPort)
			}
			if p.Port == port(cfg.APIListen) && p.Protocol == "TCP" {
				if len(rule.From) == 0 {
					t.Fatal("the NetworkPolicy opens the API port to everyone")
				}
				for _, f := range rule.From {
					if f.IPBlock == nil {
						continue
					}
					apiFrom++
					pfx, err := netip.ParsePrefix(f.IPBlock.CIDR)
					if err != nil || pfx.Bits() == 0 || !slices.ContainsFunc(cfg.APIAllow, func(a netip.Prefix) bool {
						return a.Bits() <= pfx.Bits() && a.Contains(pfx.Addr())
					}) {
						t.Errorf("the API port is open to %s, outside --api-allow %v", f.IPBlock.CIDR, cfg.APIAllow)
					}
				}
				continue
			}
			if len(rule.From) != 0 {
				t.Errorf("%s is limited to some sources; clients come from anywhere", key)
			}
			open[key] = true
		}
	}
	if apiFrom == 0 {
		t.Error("the NetworkPolicy lets nobody reach the API port")
	}
	for _, want := range []string{"TCP " + itoa(port(cfg.TCPListen)), "UDP " + itoa(first) + "-" + itoa(last),
		"TCP " + itoa(port(cfg.SOCKSListen)), "TCP " + itoa(port(cfg.HealthListen))} {
		if !open[want] {
			t.Errorf("the NetworkPolicy does not open %s (open: %v)", want, open)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
