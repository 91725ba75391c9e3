package mastercompat

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// MailVersion returns the mail_version of the Postfix whose commands are in
// commandDir (command_directory), as "postconf -dh mail_version" prints it:
// the compiled-in release, which main.cf cannot change.
func MailVersion(ctx context.Context, commandDir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(commandDir, "postconf"), "-dh", "mail_version").Output()
	if err != nil {
		return "", fmt.Errorf("mastercompat: postconf -dh mail_version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// macroErrorText is dict_eval's fatal error after a failed expansion of a
// main.cf value (main.cf is the dictionary "mail_dict").
const macroErrorText = "dictionary mail_dict: macro processing error"

// badConversion starts mac_exp_eval's fatal error for an all-digit operand
// beyond a C long, which the expander records as a warning.
const badConversion = "mac_exp_eval: bad conversion: "

// expandError is a syntax error in the value of a parameter that a daemon
// expands at startup. It comes wrapped in the [*FatalError] that
// Config.evalParams returns: log Warnings first, one "warning:" line
// each, then the fatal error.
type expandError struct {
	Name     string   // the parameter whose expansion failed
	Warnings []string // mac_expand's complaints, in order, without "warning: "
}

// Error names the parameter.
func (e *expandError) Error() string {
	return "mastercompat: parameter " + e.Name + ": macro processing error"
}

// evalParams expands the named parameters in order, each from its main.cf
// or -o setting, else its built-in default; a name that is neither is
// skipped. It stops at the first expansion with a syntax error and returns
// Postfix's fatal error, "dictionary mail_dict: macro processing error",
// as a [*FatalError] wrapping an *expandError that holds the warnings
// Postfix prints before it (only that expansion's, as Postfix stops
// there). An all-digit relational operand beyond a C long gives instead
// the fatal error "mac_exp_eval: bad conversion: N", after the warnings
// that came before it. Warnings met here are not added to c.warnings.
func (c *Config) evalParams(names []string) error {
	for _, name := range names {
		v, ok := c.raw(name)
		if !ok {
			continue
		}
		mark := len(c.warnings)
		var b strings.Builder
		failed := c.macExpand(&b, v, 0, new(bool))
		warnings := append([]string(nil), c.warnings[mark:]...)
		c.warnings = c.warnings[:mark]
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
		return &FatalError{Text: text, Err: &expandError{Name: name, Warnings: warnings}}
	}
	return nil
}
