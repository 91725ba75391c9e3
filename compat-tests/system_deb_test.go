//go:build compat

package compattest

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/scache/fdtest"
)

var flagDeb = flag.String("compat.deb", os.Getenv("COMPAT_DEB"), "goscache's Debian package for TestSystemInstall (default: goscache_*.deb next to the goscache binary, where compat-tests/docker.sh stages it)")

// debPackage returns the .deb to install: -compat.deb, or the one
// compat-tests/docker.sh staged next to the goscache binary.
func debPackage(t *testing.T, bin string) string {
	t.Helper()
	if *flagDeb != "" {
		return *flagDeb
	}
	debs, _ := filepath.Glob(filepath.Join(filepath.Dir(bin), "goscache_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one goscache_*.deb next to %s (make deb; compat-tests/docker.sh stages it), found %q", bin, debs)
	}
	return debs[0]
}

// installDeb installs the package with dpkg -i and checks what it brought:
// the daemon in daemon_directory, scachectl on the PATH, the manual pages
// (which man renders without warnings) and /usr/share/doc/goscache. It
// checks that postinst printed the two ways to switch and changed no
// Postfix configuration. It returns the regular files of the package.
func installDeb(t *testing.T, deb, daemon string) []string {
	t.Helper()
	before := postfixConfig(t)
	out := runCmd(t, "dpkg", "-i", deb)
	t.Logf("dpkg -i %s:\n%s", deb, out)
	for _, want := range []string{
		"postconf -F 'scache/unix/command = goscache'",
		"postconf -M 'goscache/unix = goscache unix - - y - 1 goscache'",
		"postconf -e 'connection_cache_service_name = goscache'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("postinst did not print %q", want)
		}
	}
	if postfixConfig(t) != before {
		t.Errorf("dpkg -i changed /etc/postfix")
	}

	var files []string
	for _, f := range strings.Fields(runCmd(t, "dpkg", "-L", "goscache")) {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			files = append(files, f)
		}
	}
	for _, want := range []string{
		daemon,
		"/usr/bin/scachectl",
		"/usr/share/man/man8/goscache.8.gz",
		"/usr/share/man/man1/scachectl.1.gz",
		"/usr/share/doc/goscache/copyright",
		"/usr/share/doc/goscache/changelog.Debian.gz",
		"/usr/share/doc/goscache/operator.md.gz",
		"/usr/share/doc/goscache/examples/goscache.rules.yml",
		"/usr/lib/systemd/system/goscache-exporter.service",
		"/usr/share/lintian/overrides/goscache",
	} {
		if !slices.Contains(files, want) {
			t.Errorf("the package has no %s (files: %q)", want, files)
		}
	}
	if st, err := os.Stat(daemon); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v, %v; want mode 0755", daemon, st, err)
	}
	if out := runCmd(t, "dpkg-query", "-W", "-f", "${Depends}", "goscache"); !strings.Contains(out, "postfix (>= 3.5)") {
		t.Errorf("Depends: %q, want postfix (>= 3.5)", out)
	}
	for _, page := range []string{"goscache", "scachectl"} {
		checkManPage(t, page)
	}
	return files
}

// checkManPage renders an installed manual page by name as man(1) does and
// requires no warning.
func checkManPage(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath("man"); err != nil {
		if inCI() {
			t.Errorf("man is missing (the image's setup installs man-db)")
		}
		t.Logf("man is missing: the manual page %s is not rendered", name)
		return
	}
	cmd := exec.CommandContext(t.Context(), "man", "--warnings", name)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "PAGER=cat")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("man --warnings %s: %v: %s", name, err, stderr.String())
	}
	// Newer man-db keeps grotty's SGR escapes even without a terminal.
	text := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(stdout.String(), "")
	if !strings.Contains(text, strings.ToUpper(name)+"(") {
		t.Errorf("man %s rendered no %s( header:\n%.300s", name, strings.ToUpper(name), text)
	}
}

// postfixConfig is the content of main.cf and master.cf, to tell that a
// maintainer script changed nothing.
func postfixConfig(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, f := range []string{"main.cf", "master.cf"} {
		data, _ := os.ReadFile(filepath.Join(systemConfigDir, f))
		fmt.Fprintf(&b, "== %s\n%s", f, data)
	}
	return b.String()
}

// sharedDirRE is dpkg's notice that it left a directory of the package
// that holds other packages' files. Debian 11's packages register their
// units under /lib/systemd/system, the alias of the package's
// /usr/lib/systemd/system (merged /usr), so dpkg, seeing no other owner of
// that name, tries to remove it and says why it did not; harmless, and not
// a warning of goscache's scripts.
var sharedDirRE = regexp.MustCompile(`(?m)^dpkg: warning: while removing goscache, directory '/usr/lib/systemd/system' not empty so not removed\n`)

// purgeDeb runs dpkg --purge and requires every file of the package gone,
// with no warning from prerm (master.cf no longer runs goscache).
func purgeDeb(t *testing.T, files []string) {
	t.Helper()
	before := postfixConfig(t)
	out := runCmd(t, "dpkg", "--purge", "goscache")
	t.Logf("dpkg --purge goscache:\n%s", out)
	if strings.Contains(sharedDirRE.ReplaceAllString(out, ""), "warning:") {
		t.Errorf("dpkg --purge warned after switching back: %s", out)
	}
	if postfixConfig(t) != before {
		t.Errorf("dpkg --purge changed /etc/postfix")
	}
	for _, f := range append(files, "/usr/share/doc/goscache") {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s remains after dpkg --purge", f)
		}
	}
	if err := exec.CommandContext(t.Context(), "dpkg", "-s", "goscache").Run(); err == nil {
		t.Errorf("dpkg -s goscache succeeds after dpkg --purge")
	}
}

// exporter is a running "scachectl metrics" of the installed package.
type exporter struct {
	url    string
	stderr *fdtest.SyncBuffer
}

// startExporter starts /usr/bin/scachectl metrics on socket, on a free
// port of 127.0.0.30 (several images of the matrix may run at once on the
// host's network), and stops it at the end of the test.
func startExporter(t *testing.T, socket string) *exporter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "/usr/bin/scachectl", "-socket", socket, "metrics", "-listen", systemSinkHost+":0")
	e := &exporter{stderr: &fdtest.SyncBuffer{}}
	cmd.Stderr = e.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		t.Logf("scachectl metrics stderr:\n%s", e.stderr.String())
	})
	re := regexp.MustCompile(`on (http://\S+/metrics)\n`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(e.stderr.String()); m != nil {
			e.url = m[1]
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("scachectl metrics did not say where it listens: %q", e.stderr.String())
		}
	}
}

// scrape fetches /metrics with curl, as Prometheus would, and returns the
// body and its samples by series ("name{labels}").
func (e *exporter) scrape(t *testing.T) (string, map[string]float64) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "curl", "-sS", "--fail", "--max-time", "20", e.url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", e.url, err)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad sample %q", line)
		}
		samples[line[:i]] = v
	}
	return string(out), samples
}

// promtoolCheck runs promtool check metrics on a scrape.
func promtoolCheck(t *testing.T, body string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		if inCI() {
			t.Errorf("promtool is missing (the image's setup installs Debian's prometheus)")
		}
		t.Log("promtool is missing: scrape not checked")
		return
	}
	cmd := exec.CommandContext(t.Context(), "promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v: %s", err, out)
	}
}

// checkMetrics scrapes the exporter after way 1's deliveries: goscache_up
// is 1 for goscache, the lookup counters equal the sums of goscache's
// statistics lines (which come once a second: polled until they cover
// every lookup), the hits equal the deliveries over reused connections,
// from smtp(8)'s log and from the sink, and promtool accepts the scrape.
func checkMetrics(t *testing.T, e *exporter, in *pfx.Instance, off int64, r systemResult) {
	t.Helper()
	var body string
	var m map[string]float64
	var st pfx.Stats
	lookups := func() [4]float64 {
		return [4]float64{
			m[`goscache_lookups_total{kind="domain",result="hit"}`], m[`goscache_lookups_total{kind="domain",result="miss"}`],
			m[`goscache_lookups_total{kind="address",result="hit"}`], m[`goscache_lookups_total{kind="address",result="miss"}`],
		}
	}
	logged := func() [4]float64 {
		return [4]float64{float64(st.DestHits), float64(st.DestMiss), float64(st.EndpHits), float64(st.EndpMiss)}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		body, m = e.scrape(t)
		lines, err := in.LogSince(off)
		if err != nil {
			t.Fatal(err)
		}
		st = pfx.ParseStats(lines, r.tag)
		if lookups() == logged() || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("way1 /metrics:\n%s", body)
	if got := m[`goscache_up`]; got != 1 {
		t.Errorf(`goscache_up = %v, want 1`, got)
	}
	if got := m[`goscache_server_info{extensions="true",server="goscache"}`]; got != 1 {
		t.Errorf(`goscache_server_info{extensions="true",server="goscache"} = %v, want 1`, got)
	}
	if lookups() != logged() {
		t.Errorf("lookups (domain hits, misses, address hits, misses): /metrics %v, statistics lines %v", lookups(), logged())
	}
	hits := int(lookups()[0] + lookups()[2])
	if sinkReused := r.counts.Messages - r.counts.Conns; hits != r.reused || hits != sinkReused || hits == 0 {
		t.Errorf("cache hits %d; deliveries over reused connections: %d in smtp's log (conn_use >= 2), %d at the sink (%d messages over %d connections)",
			hits, r.reused, sinkReused, r.counts.Messages, r.counts.Conns)
	}
	if n := m[`goscache_request_duration_seconds_count{request="find_dest"}`]; n != lookups()[0]+lookups()[1] {
		t.Errorf("find_dest requests %v, domain lookups %v", n, lookups()[0]+lookups()[1])
	}
	promtoolCheck(t, body)
}

// checkMetricsPostfix scrapes the exporter once Postfix's own scache
// serves its socket again: goscache_up and goscache_server_info say so,
// with nothing else of the daemon (the exporter's own build and error
// count aside), and no error.
func checkMetricsPostfix(t *testing.T, e *exporter) {
	t.Helper()
	body, m := e.scrape(t)
	t.Logf("after switching back, /metrics:\n%s", body)
	want := map[string]float64{
		"goscache_up": 1,
		`goscache_server_info{extensions="false",server="postfix"}`: 1,
		"goscache_scrape_errors_total":                              m["goscache_scrape_errors_total"],
	}
	for k, v := range m {
		if strings.HasPrefix(k, "goscache_exporter_build_info{") {
			continue
		}
		if w, ok := want[k]; !ok {
			t.Errorf("against Postfix's scache: unexpected series %s", k)
		} else if v != w {
			t.Errorf("against Postfix's scache: %s = %v, want %v", k, v, w)
		}
	}
	for k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("against Postfix's scache: no %s", k)
		}
	}
	promtoolCheck(t, body)
}
