package mastercompat

import (
	"context"
	"embed"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startupParamsFiles list, per Postfix release, the parameters that
// scache(8) expands at startup; TestStartupParams_realScache generates each
// from the real scache of that release. startup-params.txt is 3.7's.
//
//go:embed startup-params*.txt
var startupParamsFiles embed.FS

// startupParamsReleases are the releases with a list of their own, oldest
// first. A release between two of them uses the older one's list.
var startupParamsReleases = []release{{3, 7}, {3, 10}, {3, 11}}

// release is a Postfix major.minor version.
type release struct{ major, minor int }

func (r release) String() string { return fmt.Sprintf("%d.%d", r.major, r.minor) }

func (r release) less(o release) bool {
	return r.major < o.major || r.major == o.major && r.minor < o.minor
}

// startupParamsFile is the file that holds the list of release r.
func startupParamsFile(r release) string {
	if r == startupParamsReleases[0] {
		return "startup-params.txt"
	}
	return "startup-params-" + r.String() + ".txt"
}

// parseRelease reads the major.minor of a mail_version such as "3.10.13"
// or "3.12-20260821".
func parseRelease(mailVersion string) (release, bool) {
	major, rest, ok := strings.Cut(mailVersion, ".")
	if !ok {
		return release{}, false
	}
	minor := rest
	if i := strings.IndexFunc(rest, func(c rune) bool { return c < '0' || c > '9' }); i >= 0 {
		minor = rest[:i]
	}
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil || ma < 0 || mi < 0 {
		return release{}, false
	}
	return release{ma, mi}, true
}

// StartupParamsRelease returns the release whose list [StartupParamsFor]
// uses for mailVersion: the newest one not newer than mailVersion, and
// 3.7's for an older or unreadable version.
func StartupParamsRelease(mailVersion string) string {
	return startupParamsRelease(mailVersion).String()
}

func startupParamsRelease(mailVersion string) release {
	use := startupParamsReleases[0]
	v, ok := parseRelease(mailVersion)
	if !ok {
		return use
	}
	for _, r := range startupParamsReleases {
		if !v.less(r) {
			use = r
		}
	}
	return use
}

// StartupParamsFor returns the main.cf parameters that the scache(8) of
// Postfix mailVersion (the mail_version parameter, "3.10.13") expands at
// startup, in the order it expands them: its own
// (connection_cache_ttl_limit and so on) and the many global ones that
// mail_params_init and the multi-server skeleton read. A syntax error in
// the value of any of them is fatal (see [Config.EvalParams]); one in
// another parameter is harmless. The lists were found by running the real
// scache of 3.7.11, 3.10.13 and 3.11.7, not by reading its source; a
// release between two of them gets the older one's list (see
// [StartupParamsRelease]).
func StartupParamsFor(mailVersion string) []string {
	b, err := startupParamsFiles.ReadFile(startupParamsFile(startupParamsRelease(mailVersion)))
	if err != nil {
		panic("mastercompat: embedded startup parameter list: " + err.Error())
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line != "" && line[0] != '#' {
			names = append(names, line)
		}
	}
	return names
}

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

// StartupParams returns the parameters that Postfix 3.7's scache expands at
// startup: StartupParamsFor("3.7").
func StartupParams() []string { return StartupParamsFor("3.7") }

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
