package signaling

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameRunes bounds a display name: it travels in every join token and in
// every participant event, and a tile caption has room for about this much.
const maxNameRunes = 64

// displayName checks a participant's display name from the API and returns
// it trimmed, or a message for the 400 answer. The name is personal data the
// server only passes on: it is never logged (above debug) and never
// interpreted; clients must render it as text.
func displayName(raw string) (string, string) {
	name := strings.TrimSpace(raw)
	if !utf8.ValidString(name) {
		return "", "name must be UTF-8 text"
	}
	if n := utf8.RuneCountInString(name); n > maxNameRunes {
		return "", fmt.Sprintf("name is %d characters; the limit is %d", n, maxNameRunes)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			return "", "name must not contain control or bidirectional-override characters"
		}
	}
	return name, ""
}
