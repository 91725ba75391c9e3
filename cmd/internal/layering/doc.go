// Package layering holds no code: its test enforces the module's package
// graph (docs/architecture.md), so that the layering is checked on every
// test run instead of remembered.
package layering
