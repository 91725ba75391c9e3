package mastercompat

import (
	_ "embed"
	"strings"
)

// startupParamsFile lists the parameters that scache(8) expands at startup;
// TestStartupParams_realScache generates it from the real scache.
const startupParamsFile = "startup-params.txt"

//go:embed startup-params.txt
var startupParamsText string

// StartupParams returns the main.cf parameters that Postfix's scache 3.7.11
// expands at startup, in the order it expands them: its own
// (connection_cache_ttl_limit and so on) and the many global ones that
// mail_params_init and the multi-server skeleton read. A syntax error in
// the value of any of them is fatal (see [Config.EvalParams]); one in
// another parameter is harmless. The list was found by running the real
// scache, not by reading its source.
func StartupParams() []string {
	var names []string
	for line := range strings.Lines(startupParamsText) {
		line = strings.TrimSpace(line)
		if line != "" && line[0] != '#' {
			names = append(names, line)
		}
	}
	return names
}

// macroErrorText is dict_eval's fatal error after a failed expansion of a
// main.cf value (main.cf is the dictionary "mail_dict").
const macroErrorText = "dictionary mail_dict: macro processing error"

// badConversion starts mac_exp_eval's fatal error for an all-digit operand
// beyond a C long, which the expander records as a warning.
const badConversion = "mac_exp_eval: bad conversion: "

// ExpandError is a syntax error in the value of a parameter that a daemon
// expands at startup. It comes wrapped in the [*FatalError] that
// [Config.EvalParams] returns: log Warnings first, one "warning:" line
// each, then the fatal error.
type ExpandError struct {
	Name     string   // the parameter whose expansion failed
	Warnings []string // mac_expand's complaints, in order, without "warning: "
}

// Error names the parameter.
func (e *ExpandError) Error() string {
	return "mastercompat: parameter " + e.Name + ": macro processing error"
}

// EvalParams expands the named parameters in order, each from its main.cf
// or -o setting, else its built-in default; a name that is neither is
// skipped. It stops at the first expansion with a syntax error and returns
// Postfix's fatal error, "dictionary mail_dict: macro processing error",
// as a [*FatalError] wrapping an [*ExpandError] that holds the warnings
// Postfix prints before it (only that expansion's, as Postfix stops
// there). An all-digit relational operand beyond a C long gives instead
// the fatal error "mac_exp_eval: bad conversion: N", after the warnings
// that came before it. Warnings met here are not added to c.Warnings.
func (c *Config) EvalParams(names []string) error {
	for _, name := range names {
		v, ok := c.Raw(name)
		if !ok {
			continue
		}
		mark := len(c.Warnings)
		var b strings.Builder
		failed := c.macExpand(&b, v, 0, new(bool))
		warnings := append([]string(nil), c.Warnings[mark:]...)
		c.Warnings = c.Warnings[:mark]
		if !failed && len(warnings) == 0 {
			continue
		}
		text := macroErrorText
		for i, w := range warnings {
			if strings.HasPrefix(w, badConversion) {
				text, warnings = w, warnings[:i]
				break
			}
		}
		return &FatalError{Text: text, Err: &ExpandError{Name: name, Warnings: warnings}}
	}
	return nil
}
