package config

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// readFile reads the YAML config file: a mapping whose keys are flag names.
//
// It is strict: an unknown or repeated key is an error naming the key, the
// line and the file, because a misspelt key silently ignored is a setting the
// operator believes is in force. The keys are checked against the settings
// table directly rather than through Decoder.KnownFields, which needs a Go
// struct and would report it in the error ("not found in type struct {…}").
func readFile(path string, table []setting) (source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %q: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return source{}, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %q: line %d: want a mapping of setting: value", path, root.Line)
	}
	known := map[string]setting{}
	for _, s := range table {
		if !s.noFile {
			known[s.name] = s
		}
	}
	out := source{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		at := fmt.Sprintf("config file %q: line %d", path, k.Line)
		s, ok := known[k.Value]
		if !ok {
			return nil, fmt.Errorf("%s: unknown key %q%s", at, k.Value, suggest(k.Value, known))
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("%s: key %q given twice", at, k.Value)
		}
		value, err := nodeValue(v, s.list)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", at, k.Value, err)
		}
		out[k.Value] = rawValue{value: value, where: fmt.Sprintf("%s: key %q", at, k.Value)}
	}
	return out, nil
}

// nodeValue turns a YAML value into the raw string every source uses:
// scalars as written, null as "", and for list settings a sequence joined
// with commas (so api-allow may be a YAML list or a comma-separated string).
func nodeValue(n *yaml.Node, list bool) (string, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return "", nil
	case n.Kind == yaml.ScalarNode:
		return n.Value, nil
	case n.Kind == yaml.SequenceNode && list:
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("list items must be single values")
			}
			items = append(items, item.Value)
		}
		return strings.Join(items, ","), nil
	case list:
		return "", fmt.Errorf("want a list or a comma-separated string")
	default:
		return "", fmt.Errorf("want a single value")
	}
}

// suggest hints at the usual mistake, snake_case or env-style keys.
func suggest(key string, known map[string]setting) string {
	k := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(strings.ToUpper(key), envPrefix), "_", "-"))
	if _, ok := known[k]; ok {
		return fmt.Sprintf(" (did you mean %q?)", k)
	}
	return " (keys are the flag names, see --help)"
}
