package mastercompat

import (
	"bufio"
	"context"
	"errors"
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
	"github.com/google/go-cmp/cmp/cmpopts"
)

// realScache is Debian's scache(8), the reference for StartupParams.
const realScache = "/usr/lib/postfix/sbin/scache"

var updateStartupParams = flag.Bool("update-startup-params", false,
	"rewrite the installed release's startup-params*.txt from the real scache's behaviour")

// startupBase is the main.cf every probe starts from (QDIR is replaced by
// the probe's queue directory).
var startupBase = []Override{
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
func probeScache(t *testing.T, set []Override) ([]string, error) {
	dir := t.TempDir()
	qdir := filepath.Join(dir, "q")
	if err := os.Mkdir(qdir, 0o755); err != nil {
		return nil, err
	}
	var cf strings.Builder
	for _, b := range startupBase {
		if !slices.ContainsFunc(set, func(o Override) bool { return o.Name == b.Name }) {
			fmt.Fprintf(&cf, "%s = %s\n", b.Name, strings.ReplaceAll(b.Value, "QDIR", qdir))
		}
	}
	for _, o := range set {
		fmt.Fprintf(&cf, "%s = %s\n", o.Name, strings.ReplaceAll(o.Value, "QDIR", qdir))
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
const macroFatal = "postfix/scache: fatal: " + macroErrorText

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
				lines, err := probeScache(t, []Override{{name, "${{a} = {b}}"}})
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

	var bad []Override
	for _, n := range names {
		if evaluated[n] {
			bad = append(bad, Override{n, "${{" + n + "} = {b}}"})
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
		i := slices.IndexFunc(bad, func(o Override) bool { return o.Name == m[1] })
		bad[i].Value = defaults[m[1]]
		if j := slices.IndexFunc(startupBase, func(o Override) bool { return o.Name == m[1] }); j >= 0 {
			bad[i].Value = startupBase[j].Value
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
		// added to startupParamsReleases.
		if err := os.WriteFile(startupParamsFile(rel), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(StartupParamsFor(version), got); diff != "" {
		t.Errorf("StartupParamsFor(%q) (the %s list) differs from the real scache (-file +real); rerun with -update-startup-params:\n%s",
			version, StartupParamsRelease(version), diff)
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
# go test ./mastercompat -run StartupParams_realScache -update-startup-params
`
}

func TestStartupParamsFor(t *testing.T) {
	tests := []struct{ version, release string }{
		{"3.7.11", "3.7"},
		{"3.7", "3.7"},
		{"3.6.4", "3.7"}, // older: the oldest list
		{"3.9.1", "3.7"}, // between two lists: the older one
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
			if got := StartupParamsRelease(tt.version); got != tt.release {
				t.Errorf("StartupParamsRelease(%q) = %s, want %s", tt.version, got, tt.release)
			}
			if diff := cmp.Diff(StartupParamsFor(tt.release), StartupParamsFor(tt.version)); diff != "" {
				t.Errorf("StartupParamsFor(%q) is not the %s list:\n%s", tt.version, tt.release, diff)
			}
		})
	}
	// The lists differ: 3.10 added maillog_file_permissions, 3.11 the
	// non_bdb_* migration parameters.
	for _, c := range []struct {
		version, param string
		want           bool
	}{
		{"3.7.11", "maillog_file_permissions", false},
		{"3.10.13", "maillog_file_permissions", true},
		{"3.10.13", "non_bdb_migration_level", false},
		{"3.11.7", "non_bdb_migration_level", true},
	} {
		if got := slices.Contains(StartupParamsFor(c.version), c.param); got != c.want {
			t.Errorf("%s: %s in the list = %v, want %v", c.version, c.param, got, c.want)
		}
	}
}

func TestStartupParams(t *testing.T) {
	names := StartupParams()
	if len(names) < 100 {
		t.Fatalf("StartupParams() has %d names", len(names))
	}
	for _, n := range []string{"compatibility_level", "mydomain", "max_idle", "connection_cache_ttl_limit"} {
		if !slices.Contains(names, n) {
			t.Errorf("StartupParams() lacks %s", n)
		}
	}
	if slices.Contains(names, "smtpd_banner") {
		t.Error("StartupParams() has smtpd_banner, which scache never expands")
	}
	if i, j := slices.Index(names, "compatibility_level"), slices.Index(names, "connection_cache_ttl_limit"); i != 0 || j != len(names)-2 {
		t.Errorf("compatibility_level at %d, connection_cache_ttl_limit at %d of %d", i, j, len(names))
	}
}

func TestConfig_EvalParams(t *testing.T) {
	const relOps = `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: `
	tests := []struct {
		name     string
		mainCF   string
		names    []string
		want     string   // fatal text, "" for success
		param    string   // ExpandError.Name
		warnings []string // ExpandError.Warnings
	}{
		{name: "clean", mainCF: "a = $b\nb = x\n", names: []string{"a", "b", "unknown"}},
		{name: "none", mainCF: "a = ${{x} = {y}}\n", names: nil},
		{name: "unlisted", mainCF: "unrelated_param = ${{a} = {b}}\n", names: []string{"mydomain", "queue_directory"}},
		{
			name: "ttl limit", mainCF: "connection_cache_ttl_limit = ${{2s} == }\n",
			names: []string{"mydomain", "connection_cache_ttl_limit"},
			want:  macroErrorText, param: "connection_cache_ttl_limit",
			warnings: []string{`"{expression}" expected at: "...{2s} ==>>> "`},
		},
		{
			name: "first of two", mainCF: "b = ${{b} = {x}}\na = ${{a} = {x}}\n",
			names: []string{"a", "b"},
			want:  macroErrorText, param: "a",
			warnings: []string{relOps + `"...a}>>>= {x}"`},
		},
		{
			name: "through a reference", mainCF: "a = x $c\nc = ${{c} = {x}}\n",
			names: []string{"a", "c"},
			want:  macroErrorText, param: "a",
			warnings: []string{relOps + `"...c}>>>= {x}"`},
		},
		{
			name: "through a default", mainCF: "mydomain = ${{h} = {x}}\n", // myhostname = host.$mydomain
			names: []string{"myhostname"},
			want:  macroErrorText, param: "myhostname",
			warnings: []string{relOps + `"...h}>>>= {x}"`},
		},
		{
			name: "bad conversion", mainCF: "a = ${{99999999999999999999} == {1}}\n",
			names: []string{"a"},
			want:  "mac_exp_eval: bad conversion: 99999999999999999999", param: "a",
		},
		{
			name: "bad compatibility level", mainCF: "a = ${{x} <=level {1}}\n",
			names: []string{"a"},
			want:  macroErrorText, param: "a",
			warnings: []string{`malformed compatibility level syntax: "x"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfig("/etc/postfix", "host")
			if err := c.Load(strings.NewReader(tt.mainCF)); err != nil {
				t.Fatal(err)
			}
			err := c.EvalParams(tt.names)
			if len(c.Warnings) != 0 {
				t.Errorf("c.Warnings = %q, want them in the error only", c.Warnings)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("EvalParams = %v, want nil", err)
				}
				return
			}
			fe, ok := errors.AsType[*FatalError](err)
			if !ok {
				t.Fatalf("EvalParams = %v, want a *FatalError", err)
			}
			ee, ok := errors.AsType[*ExpandError](err)
			if !ok {
				t.Fatalf("EvalParams = %v, want it to wrap an *ExpandError", err)
			}
			if fe.Text != tt.want || ee.Name != tt.param {
				t.Errorf("fatal %q in %s, want %q in %s", fe.Text, ee.Name, tt.want, tt.param)
			}
			if diff := cmp.Diff(tt.warnings, ee.Warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMailVersion(t *testing.T) {
	if _, err := MailVersion(t.Context(), t.TempDir()); err == nil {
		t.Error("MailVersion found a postconf in an empty directory")
	}
	if _, err := os.Stat("/usr/sbin/postconf"); err != nil {
		t.Skipf("Postfix is not installed: %v", err)
	}
	v, err := MailVersion(t.Context(), "/usr/sbin")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parseRelease(v); !ok {
		t.Errorf("MailVersion = %q, not a Postfix version", v)
	}
}
