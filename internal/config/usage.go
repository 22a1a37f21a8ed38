package config

import (
	"fmt"
	"io"
)

// Usage writes every setting with its flag, environment variable, default
// (and --dev default) and help, generated from the settings table so it
// cannot fall out of date.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "Settings, in increasing precedence: default < YAML file (--config) < environment < flag.\n")
	fmt.Fprintf(w, "YAML keys are the flag names; environment names are %s + the flag name in upper snake case.\n\n", envPrefix)
	for _, s := range settings() {
		flagText := "--" + s.name
		if s.arg != "" {
			flagText += " " + s.arg
		}
		fmt.Fprintf(w, "  %-32s %s\n", flagText, envName(s.name))
		fmt.Fprintf(w, "        %s\n", s.help)
		def := "(none)"
		if s.def != "" {
			def = fmt.Sprintf("%q", s.def)
		}
		if s.devDef != "" {
			def += fmt.Sprintf(", with --dev %q", s.devDef)
		}
		fmt.Fprintf(w, "        default: %s\n", def)
	}
}
