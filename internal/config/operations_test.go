package config

import (
	"strings"
	"testing"
	"time"
)

// The operations settings: defaults, each source, and what is refused.
func TestOperationsSettings(t *testing.T) {
	c := mustLoad(t, []string{"--api-secret", testSecret}, env(), hostIP())
	if c.DrainTimeout != time.Hour || c.HealthListen != "" {
		t.Errorf("drain timeout %v (want 1h), health listener %q (want off)", c.DrainTimeout, c.HealthListen)
	}
	c = mustLoad(t, []string{"--dev"}, env("ORVILLE_HEALTH_LISTEN", "0.0.0.0:8080"), hostIP())
	if c.HealthListen != "0.0.0.0:8080" {
		t.Errorf("health listener from the environment %q", c.HealthListen)
	}
	file := writeFile(t, "drain-timeout: 90s\n")
	c = mustLoad(t, []string{"--api-secret", testSecret, "--config", file}, env(), hostIP())
	if c.DrainTimeout != 90*time.Second {
		t.Errorf("drain timeout from YAML %v", c.DrainTimeout)
	}
	c = mustLoad(t, []string{"--api-secret", testSecret, "--config", file}, env("ORVILLE_DRAIN_TIMEOUT", "2m"), hostIP())
	if c.DrainTimeout != 2*time.Minute {
		t.Errorf("drain timeout from the environment %v", c.DrainTimeout)
	}
	c = mustLoad(t, []string{"--api-secret", testSecret, "--drain-timeout", "0s"}, env("ORVILLE_DRAIN_TIMEOUT", "2m"), hostIP())
	if c.DrainTimeout != 0 {
		t.Errorf("--drain-timeout 0s gave %v", c.DrainTimeout)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--drain-timeout", "-1s"}, "--drain-timeout (ORVILLE_DRAIN_TIMEOUT) must not be negative"},
		{[]string{"--webhook-url", "https://hooks.example.com/orville"}, "--webhook-secret (ORVILLE_WEBHOOK_SECRET) is required with --webhook-url"},
		{[]string{"--webhook-url", "https://hooks.example.com/orville", "--webhook-secret", "short"}, "--webhook-secret (ORVILLE_WEBHOOK_SECRET) must be at least 16"},
		{[]string{"--webhook-url", "ftp://hooks.example.com/"}, "not an http:// or https:// URL"},
		{[]string{"--health-listen", "8080"}, "--health-listen"},
		{[]string{"--webhook-timeout", "0s"}, "--webhook-timeout (ORVILLE_WEBHOOK_TIMEOUT) must be positive"},
		{[]string{"--webhook-retry-for", "0s"}, "--webhook-retry-for (ORVILLE_WEBHOOK_RETRY_FOR) must be positive"},
	} {
		if msg := loadErr(t, append([]string{"--api-secret", testSecret}, tt.args...), env()); !strings.Contains(msg, tt.want) {
			t.Errorf("%v: error %q does not contain %q", tt.args, msg, tt.want)
		}
	}
}

// --webhook-url is a list: repeated flags add up, the environment and YAML
// take commas (YAML also a sequence); the flag replaces what lower layers said.
func TestWebhookSettings(t *testing.T) {
	const secret = "webhook-secret-0123456789"
	c := mustLoad(t, []string{"--api-secret", testSecret}, env(), hostIP())
	if len(c.WebhookURLs) != 0 || c.WebhookTimeout != 5*time.Second || c.WebhookRetryFor != 10*time.Minute {
		t.Fatalf("defaults: %v %v %v", c.WebhookURLs, c.WebhookTimeout, c.WebhookRetryFor)
	}
	c = mustLoad(t, []string{"--api-secret", testSecret, "--webhook-secret", secret,
		"--webhook-url", "https://a.example/h", "--webhook-url", "https://b.example/h,http://c.example:8080/h"}, env(), hostIP())
	if strings.Join(c.WebhookURLs, " ") != "https://a.example/h https://b.example/h http://c.example:8080/h" || c.WebhookSecret != secret {
		t.Fatalf("repeated flag: %q", c.WebhookURLs)
	}
	file := writeFile(t, "webhook-url:\n  - https://file.example/1\n  - https://file.example/2\nwebhook-secret: "+secret+"\nwebhook-timeout: 2s\n")
	c = mustLoad(t, []string{"--api-secret", testSecret, "--config", file}, env(), hostIP())
	if strings.Join(c.WebhookURLs, " ") != "https://file.example/1 https://file.example/2" || c.WebhookTimeout != 2*time.Second {
		t.Fatalf("from YAML: %q %v", c.WebhookURLs, c.WebhookTimeout)
	}
	c = mustLoad(t, []string{"--api-secret", testSecret, "--config", file},
		env("ORVILLE_WEBHOOK_URL", "https://env.example/1,https://env.example/2", "ORVILLE_WEBHOOK_RETRY_FOR", "1m"), hostIP())
	if strings.Join(c.WebhookURLs, " ") != "https://env.example/1 https://env.example/2" || c.WebhookRetryFor != time.Minute {
		t.Fatalf("from the environment: %q %v", c.WebhookURLs, c.WebhookRetryFor)
	}
	c = mustLoad(t, []string{"--api-secret", testSecret, "--config", file, "--webhook-url", "https://flag.example/"},
		env("ORVILLE_WEBHOOK_URL", "https://env.example/1"), hostIP())
	if strings.Join(c.WebhookURLs, " ") != "https://flag.example/" {
		t.Fatalf("flag over env and file: %q", c.WebhookURLs)
	}
}
