package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
)

// scrape gathers the collector's metrics for socket once, as the HTTP
// handler does, checks them with promlint (the linter behind promtool
// check metrics) and returns the text exposition format and what was logged.
func scrape(t *testing.T, socket string) (text, stderr string) {
	t.Helper()
	reg, errb := collectorRegistry(t, socket)
	return gatherText(t, reg), errb.String()
}

// collectorRegistry registers a collector of socket, as runMetrics does;
// what it logs goes to the buffer returned.
func collectorRegistry(t *testing.T, socket string) (*prometheus.Registry, *bytes.Buffer) {
	var errb bytes.Buffer
	e := &env{ctx: t.Context(), stdout: io.Discard, stderr: &errb, socket: socket, timeout: 5 * time.Second, dial: dialScache}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(e))
	return reg, &errb
}

func gatherText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// promtool runs "promtool check metrics" (Debian's prometheus package,
// installed by make setup) on a scrape. Without it the check is skipped,
// except under CI=true.
func promtool(t *testing.T, text string) {
	t.Helper()
	path, ok := lookPromtool(t)
	if !ok {
		t.Log("promtool is missing: promtool check metrics skipped (promlint ran)")
		return
	}
	cmd := exec.CommandContext(t.Context(), path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v: %s", err, out)
	}
}

// lookPromtool finds promtool; when it is missing under CI=true, where
// make setup installs it, the test fails.
func lookPromtool(t *testing.T) (string, bool) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Error("promtool is missing: make setup installs Debian's prometheus package")
		}
		return "", false
	}
	return path, true
}

// normalizeMetrics replaces the values that change from run to run: times,
// and the latency histograms' sums and buckets (their counts stay).
func normalizeMetrics(s string) string {
	for _, r := range []struct{ re, repl string }{
		{`(?m)^(goscache_(start_time|uptime)_seconds) \S+$`, "$1 X"},
		{`(?m)^(goscache_request_duration_seconds_(bucket|sum)\{[^}]*\}) \S+$`, "$1 X"},
		{`(?m)^goscache_exporter_build_info\{.*\} 1$`, `goscache_exporter_build_info{goversion="X",revision="X",version="X"} 1`},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.repl)
	}
	return s
}

// TestMetrics_goscache: after a scripted run, every counter the exporter
// shows is the one the requests made.
func TestMetrics_goscache(t *testing.T) {
	g := startGoscacheIdle(t)
	sk := fdtest.NewTCPPeer(t)
	cli := func(args ...string) {
		t.Helper()
		mustRun(t, append([]string{"-socket", g.path}, args...)...)
		g.waitIdle()
	}
	endp := `smtp\n127.0.0.1\n` + sk.Port() + `\n1\n`
	cli("save-dest", "-ttl", "60s", destLabel, endp)
	cli("save-endp", "-ttl", "60s", sk.Addr())
	cli("find-dest", destLabel)                          // hit; given back with a save_endp
	cli("find-endp", `smtp\n127.0.0.9\n25\n1\n`)         // miss
	cli("find-dest", "-take", `smtp\nnowhere.example\n`) // miss
	text, stderr := scrape(t, g.path)
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	golden(t, "metrics.txt", normalizeMetrics(text))
	promtool(t, text)

	// A second scrape counts the first one's goscache_stats request.
	text, _ = scrape(t, g.path)
	if !strings.Contains(text, `goscache_request_duration_seconds_count{request="goscache_stats"} 1`) {
		t.Errorf("second scrape does not count the first one's request:\n%s", text)
	}
}

// TestMetrics_postfix: against a peer without the extension requests the
// exporter shows goscache_up with extensions="false" and no error.
func TestMetrics_postfix(t *testing.T) {
	text, stderr := scrape(t, scachetest.NoExtensions(t))
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	golden(t, "metrics_postfix.txt", normalizeMetrics(text))
	promtool(t, text)
}

// TestMetrics_restart: a daemon that is down makes goscache_up 0 and
// counts a scrape error; once a daemon listens on the socket again, the
// next scrape reads it, with nothing to restart on the exporter's side.
func TestMetrics_restart(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "scache")
	reg, errb := collectorRegistry(t, socket)

	text := gatherText(t, reg)
	for _, want := range []string{"goscache_up 0\n", "goscache_scrape_errors_total 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("daemon down: no %q in\n%s", want, text)
		}
	}
	if !strings.Contains(errb.String(), "no cache socket at "+socket) {
		t.Errorf("daemon down: stderr %q", errb.String())
	}

	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{StatusUpdateTime: -1})
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	text = gatherText(t, reg)
	for _, want := range []string{"goscache_up 1\n", `goscache_server_info{extensions="true",server="goscache"} 1`, "goscache_scrape_errors_total 1", "goscache_clients 0"} {
		if !strings.Contains(text, want) {
			t.Errorf("daemon back: no %q in\n%s", want, text)
		}
	}
}

// TestMetrics_serve runs "scachectl metrics" and scrapes it over HTTP.
func TestMetrics_serve(t *testing.T) {
	sock := startGoscache(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out bytes.Buffer
	w := &notifyWriter{w: &out, first: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-socket", sock, "metrics", "-listen", "127.0.0.1:0"}, io.Discard, w)
	}()
	select {
	case <-w.first:
	case err := <-done:
		t.Fatalf("metrics ended: %v: %s", err, out.String())
	}
	w.mu.Lock()
	m := regexp.MustCompile(`on (http://\S+/metrics)\n`).FindStringSubmatch(out.String())
	w.mu.Unlock()
	if m == nil {
		t.Fatalf("no URL in %q", out.String())
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("goscache_up 1\n")) {
		t.Errorf("GET %s: %s\n%s", m[1], resp.Status, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("metrics after interrupt: %v", err)
	}
}

func TestMetrics_usage(t *testing.T) {
	r := runCLI(t, "-socket", "/nonexistent", "metrics", "-listen", "256.0.0.1:1")
	if r.code != exitError || !strings.Contains(r.stderr, "scachectl: metrics: listen tcp") {
		t.Errorf("bad -listen: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "-socket", "/nonexistent", "metrics", "extra")
	if r.code != exitUsage {
		t.Errorf("extra argument: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestAlertRules: the alert rules the package ships
// (docs/examples/goscache.rules.yml) name only metrics the exporter serves,
// promtool accepts them, and their unit tests (goscache.rules.test.yml)
// pass under promtool test rules.
func TestAlertRules(t *testing.T) {
	const dir = "../../docs/examples"
	rules, err := os.ReadFile(filepath.Join(dir, "goscache.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	ch := make(chan *prometheus.Desc, 32)
	newCollector(nil).Describe(ch)
	close(ch)
	for d := range ch {
		name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String())[1]
		served[name] = true
		if strings.HasSuffix(name, "_seconds") {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				served[name+s] = true
			}
		}
	}
	for _, name := range regexp.MustCompile(`\bgoscache_[a-z_]+`).FindAll(rules, -1) {
		if !served[string(name)] {
			t.Errorf("the alert rules use %s, which the exporter does not serve", name)
		}
	}
	path, ok := lookPromtool(t)
	if !ok {
		t.Skip("promtool is missing: promtool check rules and test rules skipped")
	}
	for _, args := range [][]string{{"check", "rules", "goscache.rules.yml"}, {"test", "rules", "goscache.rules.test.yml"}} {
		cmd := exec.CommandContext(t.Context(), path, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
