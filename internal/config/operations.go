package config

// finishOperations validates the operations settings: drain, health
// listener, webhooks.
func (c *Config) finishOperations(bad func(name, format string, a ...any)) {
	if c.DrainTimeout < 0 {
		bad("drain-timeout", "must not be negative (0 ends calls at once on SIGTERM)")
	}
	switch {
	case len(c.WebhookURLs) > 0 && c.WebhookSecret == "":
		bad("webhook-secret", "is required with --webhook-url: receivers verify every request with it")
	case c.WebhookSecret != "" && len(c.WebhookSecret) < minSecretLen:
		bad("webhook-secret", "must be at least %d characters", minSecretLen)
	}
	if c.WebhookTimeout <= 0 {
		bad("webhook-timeout", "must be positive")
	}
	if c.WebhookRetryFor <= 0 {
		bad("webhook-retry-for", "must be positive")
	}
}
