// Package archtest holds no code: its test enforces the import rules of
// DESIGN.md ("Layout and style") on the module's package graph.
package archtest
