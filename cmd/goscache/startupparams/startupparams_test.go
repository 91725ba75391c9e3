package startupparams

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// realScache is Debian's scache(8), the reference for the lists.
const realScache = "/usr/lib/postfix/sbin/scache"

var updateStartupParams = flag.Bool("update-startup-params", false,
	"rewrite the installed release's startup-params*.txt from the real scache's behaviour")

// setting is one "name = value" line of a probe's main.cf.
type setting struct{ name, value string }

// startupBase is the main.cf every probe starts from (QDIR is replaced by
// the probe's queue directory).
var startupBase = []setting{
	{"queue_directory", "QDIR"},
	{"mail_owner", "postfix"},
	{"setgid_group", "postdrop"},
	{"default_privs", "nobody"},
	{"myhostname", "test.example"},
	{"compatibility_level", "3.6"},
}

// probeScache runs the real scache with a main.cf made of startupBase,
// overridden by set (in order), as PROTOCOL.md §6.10 Option A does
// (-l -t unix -V, fd 5 and 6 on /dev/null), and returns its stderr lines
// up to and including the first fatal one. It kills the process once the
// fatal line is out, which skips msg_fatal's one-second sleep.
func probeScache(t *testing.T, set []setting) ([]string, error) {
	dir := t.TempDir()
	qdir := filepath.Join(dir, "q")
	if err := os.Mkdir(qdir, 0o755); err != nil {
		return nil, err
	}
	var cf strings.Builder
	for _, b := range startupBase {
		if !slices.ContainsFunc(set, func(o setting) bool { return o.name == b.name }) {
			fmt.Fprintf(&cf, "%s = %s\n", b.name, strings.ReplaceAll(b.value, "QDIR", qdir))
		}
	}
	for _, o := range set {
		fmt.Fprintf(&cf, "%s = %s\n", o.name, strings.ReplaceAll(o.value, "QDIR", qdir))
	}
	path := filepath.Join(dir, "main.cf")
	if err := os.WriteFile(path, []byte(cf.String()), 0o644); err != nil {
		return nil, err
	}
	// Postfix rereads a main.cf younger than a few seconds until it is
	// stable; an old time stamp saves that wait.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		return nil, err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, realScache, "-l", "-t", "unix", "-V")
	cmd.Dir = dir
	cmd.Env = []string{"MAIL_CONFIG=" + dir, "LANG=C", "PATH=/usr/bin:/bin"}
	cmd.ExtraFiles = []*os.File{nil, nil, null, null} // fds 5 and 6
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), ": fatal: ") {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return lines, ctx.Err()
}

// macroFatal is the fatal line of an expansion syntax error.
const macroFatal = "postfix/scache: fatal: dictionary mail_dict: macro processing error"

// TestStartupParams_realScache regenerates startup-params.txt from the
// real scache: every parameter that `postconf -d` names gets a main.cf
// syntax error of its own, and those whose error kills scache with
// "macro processing error" are the evaluated set. Then, with all of them
// wrong at once (each a different text naming the parameter), the first
// warning names the one evaluated first; that one gets its expanded
// default and the next run names the next, which gives the order.
func TestStartupParams_realScache(t *testing.T) {
	if _, err := os.Stat(realScache); err != nil {
		t.Skipf("Postfix's scache is not installed: %v", err)
	}
	if testing.Short() {
		t.Skip("runs the real scache about 1200 times")
	}
	out, err := exec.Command("postconf", "-dx").Output()
	if err != nil {
		t.Skipf("postconf -dx: %v", err)
	}
	vout, err := exec.Command("postconf", "-dh", "mail_version").Output()
	if err != nil {
		t.Fatalf("postconf -dh mail_version: %v", err)
	}
	version := strings.TrimSpace(string(vout))
	rel, ok := parseRelease(version)
	if !ok {
		t.Fatalf("mail_version %q", version)
	}
	var names []string
	defaults := make(map[string]string)
	for line := range strings.Lines(string(out)) {
		name, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " = ")
		name = strings.TrimSuffix(name, " =") // an empty value
		names = append(names, name)
		defaults[name] = value
	}
	if len(names) < 500 {
		t.Fatalf("postconf -dx printed %d parameters", len(names))
	}

	var (
		mu        sync.Mutex
		evaluated = make(map[string]bool)
		work      = make(chan string)
		wg        sync.WaitGroup
	)
	for range 4 * runtime.NumCPU() {
		wg.Go(func() {
			for name := range work {
				lines, err := probeScache(t, []setting{{name, "${{a} = {b}}"}})
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
				if slices.Contains(lines, macroFatal) {
					mu.Lock()
					evaluated[name] = true
					mu.Unlock()
				}
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		return
	}

	var bad []setting
	for _, n := range names {
		if evaluated[n] {
			bad = append(bad, setting{n, "${{" + n + "} = {b}}"})
		}
	}
	var got []string
	which := regexp.MustCompile(`^postfix/scache: warning: .* expected at: "\.\.\.([a-z0-9_]+)\}>>>= \{b\}"$`)
	for range len(bad) + 1 {
		lines, err := probeScache(t, bad)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != 2 || lines[1] != macroFatal {
			if len(got) == len(evaluated) {
				break // nothing wrong any more
			}
			t.Fatalf("with %d parameters still wrong, scache printed %q", len(bad)-len(got), lines)
		}
		m := which.FindStringSubmatch(lines[0])
		if m == nil || slices.Contains(got, m[1]) {
			t.Fatalf("unexpected warning %q (so far %q)", lines[0], got)
		}
		got = append(got, m[1])
		i := slices.IndexFunc(bad, func(o setting) bool { return o.name == m[1] })
		bad[i].value = defaults[m[1]]
		if j := slices.IndexFunc(startupBase, func(o setting) bool { return o.name == m[1] }); j >= 0 {
			bad[i].value = startupBase[j].value
		}
	}
	if len(got) != len(evaluated) {
		t.Fatalf("ordered %d of %d evaluated parameters", len(got), len(evaluated))
	}

	if *updateStartupParams {
		var b strings.Builder
		b.WriteString(startupParamsHeader(version))
		for _, n := range got {
			b.WriteString(n + "\n")
		}
		// A release without a list yet gets a file of its own, to be
		// added to releases.
		if err := os.WriteFile(file(rel), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(For(version), got); diff != "" {
		t.Errorf("For(%q) (the %s list) differs from the real scache (-file +real); rerun with -update-startup-params:\n%s",
			version, Release(version), diff)
	}
}

// startupParamsHeader heads a startup-params*.txt file made from the real
// scache of Postfix version.
func startupParamsHeader(version string) string {
	return `# The main.cf parameters that Postfix's scache ` + version + ` expands at
# startup, in the order it expands them: a $-expansion syntax error in any of
# them is fatal ("dictionary mail_dict: macro processing error"), in any other
# parameter harmless. Generated, not written: TestStartupParams_realScache
# gives each parameter that "postconf -d" names a syntax error of its own in a
# small main.cf (queue_directory, mail_owner, setgid_group, default_privs,
# myhostname, compatibility_level = 3.6), runs the real scache
# (-l -t unix -V, fds 5 and 6 on /dev/null) and keeps those that die with the
# macro error; the order comes from making all of them wrong at once and
# fixing the one the first warning names, run after run.
# Regenerate (on that Postfix release, e.g. in its compat-docker image):
# go test ./cmd/goscache/startupparams -run StartupParams_realScache -update-startup-params
`
}

func TestStartupParamsFor(t *testing.T) {
	tests := []struct{ version, release string }{
		{"3.7.11", "3.7"},
		{"3.7", "3.7"},
		{"3.5.25", "3.5"},
		{"3.4.14", "3.5"}, // older: the oldest list
		{"3.6.4", "3.5"},  // between two lists: the older one
		{"3.9.1", "3.7"},  // between two lists: the older one
		{"3.10.13", "3.10"},
		{"3.11.7", "3.11"},
		{"3.12-20260821", "3.11"}, // a snapshot: the newest list
		{"4.0.0", "3.11"},
		{"", "3.7"},
		{"unknown", "3.7"},
		{"3.x", "3.7"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			if got := Release(tt.version); got != tt.release {
				t.Errorf("Release(%q) = %s, want %s", tt.version, got, tt.release)
			}
			if diff := cmp.Diff(For(tt.release), For(tt.version)); diff != "" {
				t.Errorf("For(%q) is not the %s list:\n%s", tt.version, tt.release, diff)
			}
		})
	}
	// The lists differ: 3.6 added known_tcp_ports and respectful_logging,
	// 3.10 maillog_file_permissions, 3.11 the non_bdb_* migration
	// parameters.
	for _, c := range []struct {
		version, param string
		want           bool
	}{
		{"3.5.25", "known_tcp_ports", false},
		{"3.5.25", "respectful_logging", false},
		{"3.7.11", "known_tcp_ports", true},
		{"3.7.11", "respectful_logging", true},
		{"3.7.11", "maillog_file_permissions", false},
		{"3.10.13", "maillog_file_permissions", true},
		{"3.10.13", "non_bdb_migration_level", false},
		{"3.11.7", "non_bdb_migration_level", true},
	} {
		if got := slices.Contains(For(c.version), c.param); got != c.want {
			t.Errorf("%s: %s in the list = %v, want %v", c.version, c.param, got, c.want)
		}
	}
}

// TestStartupParams checks the 3.7 list (startup-params.txt) for what
// scache is known to expand first, last and never.
func TestStartupParams(t *testing.T) {
	names := For("3.7")
	if len(names) < 100 {
		t.Fatalf("For(\"3.7\") has %d names", len(names))
	}
	for _, n := range []string{"compatibility_level", "mydomain", "max_idle", "connection_cache_ttl_limit"} {
		if !slices.Contains(names, n) {
			t.Errorf("For(\"3.7\") lacks %s", n)
		}
	}
	if slices.Contains(names, "smtpd_banner") {
		t.Error("For(\"3.7\") has smtpd_banner, which scache never expands")
	}
	if i, j := slices.Index(names, "compatibility_level"), slices.Index(names, "connection_cache_ttl_limit"); i != 0 || j != len(names)-2 {
		t.Errorf("compatibility_level at %d, connection_cache_ttl_limit at %d of %d", i, j, len(names))
	}
}
