package startupparams

import (
	"embed"
	"fmt"
	"strconv"
	"strings"
)

// files hold, per Postfix release, the parameters that scache(8) expands
// at startup; TestStartupParams_realScache generates each from the real
// scache of that release. startup-params.txt is 3.7's, the list of an
// unreadable version.
//
//go:embed startup-params*.txt
var files embed.FS

// releases are the releases with a list of their own, oldest first. A
// release between two of them uses the older one's list.
var releases = []release{{3, 5}, {3, 7}, {3, 10}, {3, 11}}

// defaultRelease is the release whose list an unreadable mail_version
// gets: 3.7, the first list there was (startup-params.txt).
var defaultRelease = release{3, 7}

// release is a Postfix major.minor version.
type release struct{ major, minor int }

func (r release) String() string { return fmt.Sprintf("%d.%d", r.major, r.minor) }

func (r release) less(o release) bool {
	return r.major < o.major || r.major == o.major && r.minor < o.minor
}

// file is the file that holds the list of release r.
func file(r release) string {
	if r == defaultRelease {
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

// Release returns the release whose list [For] uses for mailVersion: the
// newest one not newer than mailVersion, the oldest (3.5's) for an older
// version, and 3.7's for an unreadable one.
func Release(mailVersion string) string {
	return releaseOf(mailVersion).String()
}

func releaseOf(mailVersion string) release {
	v, ok := parseRelease(mailVersion)
	if !ok {
		return defaultRelease
	}
	use := releases[0]
	for _, r := range releases {
		if !v.less(r) {
			use = r
		}
	}
	return use
}

// For returns the main.cf parameters that the scache(8) of Postfix
// mailVersion (the mail_version parameter, "3.10.13") expands at startup,
// in the order it expands them: its own (connection_cache_ttl_limit and so
// on) and the many global ones that mail_params_init and the multi-server
// skeleton read. A syntax error in the value of any of them is fatal
// (mastercompat.Start expands what
// [github.com/goscache/goscache/mastercompat.Service] StartupParams
// returns); one in another parameter is harmless. The lists were found by running the real
// scache of 3.5.25, 3.7.11, 3.10.13 and 3.11.7, not by reading its source; a
// release between two of them gets the older one's list (see [Release]).
func For(mailVersion string) []string {
	b, err := files.ReadFile(file(releaseOf(mailVersion)))
	if err != nil {
		panic("startupparams: embedded startup parameter list: " + err.Error())
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
