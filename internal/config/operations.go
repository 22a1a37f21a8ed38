package config

// finishOperations validates the operations settings: drain, health
// listener, webhooks.
func (c *Config) finishOperations(bad func(name, format string, a ...any)) {
	if c.DrainTimeout < 0 {
		bad("drain-timeout", "must not be negative (0 ends calls at once on SIGTERM)")
	}
}
