package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// result is what one scachectl run produced.
type result struct {
	stdout, stderr string
	err            error
	code           int
}

// runCLI runs scachectl in-process with args.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, &out, &errb)
	code := exitCode(err, &errb)
	return result{stdout: out.String(), stderr: errb.String(), err: err, code: code}
}

// mustRun runs scachectl and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("scachectl %q: exit %d, err %v\nstdout:\n%s\nstderr:\n%s", args, r.code, r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

// testBuild is the build the test servers report.
var testBuild = scache.BuildInfo{Version: "9.9.9-1", Revision: "0123456789abcdef", GoVersion: "go9.9"}

// startGoscache starts a goscache server with a one-hour ttl limit and
// returns its socket path.
func startGoscache(t *testing.T) string {
	t.Helper()
	return startGoscacheIdle(t).path
}

// goscacheServer is a test server that tells when no client is connected.
type goscacheServer struct {
	path string
	mu   sync.Mutex
	cond *sync.Cond
	n    int // connected clients
}

func startGoscacheIdle(t *testing.T) *goscacheServer {
	t.Helper()
	g := &goscacheServer{}
	g.cond = sync.NewCond(&g.mu)
	g.path = scachetest.NewServer(t, server.Options{
		Build:            testBuild,
		TTLLimit:         time.Hour,
		StatusUpdateTime: -1,
		ConnCount: func(n int) {
			g.mu.Lock()
			g.n = n
			g.cond.Broadcast()
			g.mu.Unlock()
		},
	}).Path
	return g
}

// waitIdle returns once every client has gone. The server counts a lookup
// after its reply (a find hit after the trailing dummy), so a command run
// right after another may otherwise see the counters a moment early.
func (g *goscacheServer) waitIdle() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.n != 0 {
		g.cond.Wait()
	}
}

// normalize replaces what changes from run to run (socket path, port,
// times, ages, descriptor numbers) with fixed words.
func normalize(s, socket, port string) string {
	if socket != "" {
		s = strings.ReplaceAll(s, socket, "SOCKET")
	}
	for _, r := range []struct{ re, repl string }{
		{`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+\-0-9]+`, "TIME"},
		{`"\d{4}-\d\d-\d\dT[^"]+"`, `"TIME"`},
		{`\b(age|ttl) [0-9hms.]+|\bttl expired`, "$1 D"},
		{`uptime +\S+`, "uptime       D"},
		{`"(age|ttl|uptime)_seconds": -?[0-9.e+-]+`, `"${1}_seconds": 0`},
		{`\bfd \d+`, "fd N"},
		{`"fd": \d+`, `"fd": 0`},
		{`expire_time=\d+`, "expire_time=N"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.repl)
	}
	if port != "" {
		// Last, when no long number that might contain it is left.
		s = strings.ReplaceAll(s, port, "PORT")
	}
	return s
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

const (
	destLabel = `smtp\nexample.com\n`
	destProps = `destination=example.com\nhost_name=mx.example.com\nhost_addr=127.0.0.1\ndestination_features=4096\n\n`
)

// TestScenario caches real TCP connections through the CLI and checks
// every read command's output, table and JSON, against golden files.
func TestScenario(t *testing.T) {
	g := startGoscacheIdle(t)
	sock := g.path
	sk := fdtest.NewTCPPeer(t)
	cli := func(args ...string) string {
		t.Helper()
		out := normalize(mustRun(t, append([]string{"-socket", sock}, args...)...), sock, sk.Port())
		g.waitIdle()
		return out
	}
	endp := `smtp\n127.0.0.1\n` + sk.Port() + `\n1\n`

	golden(t, "stats_empty.txt", cli("stats"))
	golden(t, "dump_empty.txt", cli("dump"))
	golden(t, "dump_empty.json", cli("dump", "-json"))

	golden(t, "save_dest.txt", cli("save-dest", "-ttl", "60s", "-prop", destProps, destLabel, endp))
	golden(t, "save_endp.txt", cli("save-endp", "-ttl", "60s", sk.Addr()))
	golden(t, "save_endp.json", cli("save-endp", "-json", "-ttl", "60s", "-prop", `tls_level=1\nreuse_count=1\nendpoint_features=0\nexpire_time=1\n\n`, sk.Addr()))
	// A second binding whose endpoint has no connection.
	cli("save-dest", "-ttl", "30s", destLabel, `smtp\n127.0.0.2\n25\n1\n`)

	golden(t, "dump.txt", cli("dump"))
	golden(t, "dump.json", cli("dump", "-json"))

	// find-dest takes the oldest connection and gives it back: it is then
	// the newest of its endpoint.
	golden(t, "find_dest.txt", cli("find-dest", destLabel))
	golden(t, "find_endp_miss.txt", cli("find-endp", `smtp\n127.0.0.9\n25\n1\n`))
	golden(t, "find_endp_take.json", cli("find-endp", "-json", "-take", endp))
	golden(t, "find_dest_miss.json", cli("find-dest", "-json", "-take", `smtp\nnowhere.example\n`))

	golden(t, "stats.txt", cli("stats"))
	golden(t, "stats.json", cli("stats", "-json"))
	golden(t, "dump_after.txt", cli("dump"))

	// The sink saw the connection taken with -take closed, and only that:
	// the second one saved (find-dest moved the first behind it).
	conns := sk.Conns()
	if len(conns) != 2 {
		t.Fatalf("sink has %d connections, want 2", len(conns))
	}
	if n, err := conns[1].Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection taken with -take: read %d, %v; want EOF", n, err)
	}
	conns[0].SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := conns[0].Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection still cached: read %v; want it open and silent", err)
	}
}

// TestFindDest_givesBackTheSameConnection checks by descriptor identity that
// find-dest gives the very connection back under its endpoint label.
func TestFindDest_givesBackTheSameConnection(t *testing.T) {
	srv := scachetest.NewServer(t, server.Options{TTLLimit: time.Hour, StatusUpdateTime: -1})
	sk := fdtest.NewTCPPeer(t)
	c := srv.Client(t)
	fd := dialFD(t, sk.Addr())
	endp := "smtp\n127.0.0.1\n" + sk.Port() + "\n1\n"
	if st, err := c.SaveDest("smtp\nexample.com\n", "d\n\n", endp, 60*time.Second); st != 0 || err != nil {
		t.Fatal(st, err)
	}
	if st, err := c.SaveEndp(endp, "e\n\n", fd, 60*time.Second); st != 0 || err != nil {
		t.Fatal(st, err)
	}
	out := mustRun(t, "-socket", srv.Path, "find-dest", `smtp\nexample.com\n`)
	if !strings.Contains(out, "connection given back") {
		t.Fatalf("find-dest output:\n%s", out)
	}
	// It was given back with the time it had left (60s), not a default.
	snap := srv.Srv.Cache().Snapshot()
	if len(snap.Endps) != 1 || len(snap.Endps[0].Sessions) != 1 {
		t.Fatalf("cache after find-dest: %+v", snap)
	}
	if left := time.Until(snap.Endps[0].Sessions[0].Expires); left <= 30*time.Second || left > 60*time.Second {
		t.Errorf("connection given back with %v left, want about 60s", left)
	}
	out = mustRun(t, "-socket", srv.Path, "find-endp", "-ttl", "5s", endp)
	if !strings.Contains(out, "with ttl 5s") {
		t.Fatalf("find-endp -ttl 5s output:\n%s", out)
	}
	res, err := c.FindEndp(endp)
	got, prop, st := res.FD, res.EndpProp, res.Status
	if err != nil || st != 0 {
		t.Fatalf("FindEndp after find-dest = %d, %v", st, err)
	}
	defer unix.Close(got)
	if prop != "e\n\n" || identity(t, got) != identity(t, fd) {
		t.Errorf("connection given back is not the one cached (prop %q)", prop)
	}
}

// TestSaveEndp_fd caches a descriptor the caller already holds.
func TestSaveEndp_fd(t *testing.T) {
	sock := startGoscache(t)
	sk := fdtest.NewTCPPeer(t)
	fd := dialFD(t, sk.Addr())
	out := mustRun(t, "-socket", sock, "save-endp", "-label", `relay\n127.0.0.1\n`+sk.Port()+`\n0\n`, "-prop", `p=1\n\n`, "-fd", strconv.Itoa(fd))
	golden(t, "save_endp_fd.txt", normalize(out, sock, sk.Port()))
	// The caller's descriptor is still its own and open.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Errorf("descriptor %d after save-endp -fd: %v", fd, err)
	}
	out = mustRun(t, "-socket", sock, "find-endp", "-take", `relay\n127.0.0.1\n`+sk.Port()+`\n0\n`)
	if !strings.Contains(out, "peer 127.0.0.1:"+sk.Port()) {
		t.Errorf("find-endp output:\n%s", out)
	}
}

func TestWatch(t *testing.T) {
	sock := startGoscache(t)
	out := mustRun(t, "-socket", sock, "watch", "-count", "2", "-interval", "1ms", "-dump")
	golden(t, "watch.txt", normalize(out, sock, ""))
	out = mustRun(t, "-socket", sock, "watch", "-count", "2", "-interval", "1ms", "-json")
	if n := strings.Count(out, "\n"); n != 2 || !strings.HasPrefix(out, `{"stats":{"server":"goscache"`) {
		t.Errorf("watch -json printed %d lines:\n%s", n, out)
	}
}

// TestWatch_interrupted: watch stops quietly when its context ends.
func TestWatch_interrupted(t *testing.T) {
	sock := startGoscache(t)
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	w := &notifyWriter{w: &out, first: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-socket", sock, "watch", "-interval", "1h"}, w, &out) }()
	<-w.first
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch after interrupt: %v", err)
	}
}

// notifyWriter closes first at the first write.
type notifyWriter struct {
	mu    sync.Mutex
	w     *bytes.Buffer
	first chan struct{}
	seen  bool
}

func (n *notifyWriter) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.seen {
		n.seen = true
		defer close(n.first)
	}
	return n.w.Write(p)
}

// TestNoExtensions35: against a server that speaks Postfix 3.5's protocol
// (no announcement) and rejects the extension requests, stats, dump and
// watch show what they show against 3.6 and later (testdata/noext_*.txt),
// but say the server did not announce itself.
func TestNoExtensions35(t *testing.T) {
	sock := scachetest.NoExtensions35(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"stats", []string{"stats"}},
		{"stats_json", []string{"stats", "-json"}},
		{"dump", []string{"dump"}},
		{"watch", []string{"watch", "-count", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"-socket", sock}, tc.args...)...)
			if r.code != exitFallback || !errors.Is(r.err, errFallback) {
				t.Errorf("exit %d, err %v; want %d", r.code, r.err, exitFallback)
			}
			want, err := os.ReadFile(filepath.Join("testdata", "noext_"+tc.name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			w := strings.Replace(string(want), "(announced: Postfix 3.6 or later)", "(not announced: Postfix 3.5)", 1)
			if diff := cmp.Diff(w, normalize(r.stdout+"-- stderr:\n"+r.stderr, sock, "")); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// The standard requests get their reply without an announcement (the
	// stub answers every request with status=1).
	r := runCLI(t, "-socket", sock, "find-endp", destLabel)
	if want := "scachectl: find-endp: the server rejected the request (status=1)\n"; r.code != exitError || r.stderr != want {
		t.Errorf("find-endp: exit %d, stderr %q; want %d, %q", r.code, r.stderr, exitError, want)
	}
}

// TestNoExtensions: against a server that rejects the extension requests,
// stats and dump say so, show what they can and exit 3; find-dest refuses
// to take a connection it could not give back.
func TestNoExtensions(t *testing.T) {
	sock := scachetest.NoExtensions(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"stats", []string{"stats"}},
		{"stats_json", []string{"stats", "-json"}},
		{"dump", []string{"dump"}},
		{"watch", []string{"watch", "-count", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"-socket", sock}, tc.args...)...)
			if r.code != exitFallback || !errors.Is(r.err, errFallback) {
				t.Errorf("exit %d, err %v; want %d", r.code, r.err, exitFallback)
			}
			golden(t, "noext_"+tc.name+".txt", normalize(r.stdout+"-- stderr:\n"+r.stderr, sock, ""))
		})
	}
	r := runCLI(t, "-socket", sock, "find-dest", destLabel)
	if r.code != exitError || !strings.Contains(r.stderr, "give -endp LABEL") {
		t.Errorf("find-dest without -endp: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "-socket", sock, "find-endp", destLabel)
	if r.code != exitError || !strings.Contains(r.stderr, "rejected the request (status=1)") {
		t.Errorf("find-endp answered status=1: exit %d, stderr %q", r.code, r.stderr)
	}
	sk := fdtest.NewTCPPeer(t)
	r = runCLI(t, "-socket", sock, "save-endp", sk.Addr())
	if r.code != exitError || !strings.Contains(r.stderr, "rejected as a bad request (status=1)") {
		t.Errorf("save-endp answered status=1: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "-socket", sock, "save-dest", "a", "b")
	if r.code != exitError || !strings.Contains(r.stderr, "status=1") {
		t.Errorf("save-dest answered status=1: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nothing")
	stale := filepath.Join(dir, "stale")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	wrongProto := wrongProtocolServer(t)
	goscache := startGoscache(t)
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"no command", nil, exitUsage, "usage: scachectl"},
		{"unknown command", []string{"frob"}, exitUsage, `unknown command "frob"`},
		{"bad global flag", []string{"-nope", "stats"}, exitUsage, "flag provided but not defined: -nope"},
		{"extra argument", []string{"-socket", goscache, "stats", "x"}, exitUsage, "stats: too many arguments"},
		{"missing label", []string{"-socket", goscache, "find-endp"}, exitUsage, "find-endp: missing argument"},
		{"bad escape", []string{"-socket", goscache, "find-endp", `a\q`}, exitUsage, "bad escape sequence"},
		{"bad ttl", []string{"-socket", goscache, "save-dest", "-ttl", "0s", "a", "b"}, exitUsage, "-ttl must be positive"},
		{"save-endp neither", []string{"-socket", goscache, "save-endp"}, exitUsage, "give either HOST:PORT or -fd N"},
		{"save-endp both", []string{"-socket", goscache, "save-endp", "-fd", "0", "127.0.0.1:1"}, exitUsage, "give either HOST:PORT or -fd N"},
		{"save-endp bad fd", []string{"-socket", goscache, "save-endp", "-fd", "999", "-label", "x"}, exitError, "descriptor 999: bad file descriptor"},
		{"save-endp not tcp", []string{"-socket", goscache, "save-endp", "-fd", "0"}, exitUsage, "is not a TCP connection"},
		{"save-endp refused", []string{"-socket", goscache, "save-endp", closedPort}, exitError, "connection refused"},
		{"socket missing", []string{"-socket", missing, "stats"}, exitError, "no cache socket at " + missing + ": is goscache (or Postfix's scache) running?"},
		{"socket stale", []string{"-socket", stale, "dump"}, exitError, "nothing is listening on " + stale},
		{"wrong protocol", []string{"-socket", wrongProto, "stats"}, exitError, "does not speak connection_cache_protocol"},
		{"help flag", []string{"stats", "-h"}, exitOK, "usage: scachectl stats [-json]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
}

// TestSocketError covers the messages for errors a root test cannot
// provoke (root connects through any permission).
func TestSocketError(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{opErr(syscall.EACCES), "permission denied on /s: the cache socket is normally only reachable by root or the postfix user"},
		{opErr(syscall.EPERM), "permission denied on /s"},
		{opErr(syscall.ENOENT), "no cache socket at /s"},
		{opErr(syscall.ECONNREFUSED), "nothing is listening on /s"},
		{opErr(syscall.ENOTSOCK), "/s is not a socket"},
		{context.DeadlineExceeded, "no answer from /s within the -timeout"},
		{fmt.Errorf("scache: read announcement: %w", os.ErrDeadlineExceeded), "/s accepted the connection but no cache daemon answered in time: master(8) accepts on the socket"},
		{fmt.Errorf("scache: read announcement: %w", io.ErrUnexpectedEOF), "/s closed the connection without announcing itself: goscache does that to users it does not admit"},
		{opErr(syscall.EIO), "connect to /s: dial unix: connect: input/output error"},
	} {
		if got := socketError("/s", tc.err).Error(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("socketError(%v) = %q, want prefix %q", tc.err, got, tc.want)
		}
		if !errors.Is(socketError("/s", tc.err), tc.err) {
			t.Errorf("socketError(%v) does not wrap the cause", tc.err)
		}
	}
}

// TestSilentSocket: a socket that accepts but never announces (master(8)
// holding the socket of a throttled service) gets the explanation within
// -timeout, from the commands and from the exporter (goscache_up 0).
func TestSilentSocket(t *testing.T) {
	sock := fdtest.ServeUnix(t, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	r := runCLI(t, "-socket", sock, "-timeout", "100ms", "stats")
	if r.code != exitError || !strings.Contains(r.stderr, "bad command startup -- throttling") {
		t.Errorf("stats: exit %d, stderr %q", r.code, r.stderr)
	}
	var errb bytes.Buffer
	e := &env{ctx: t.Context(), stdout: io.Discard, stderr: &errb, socket: sock, timeout: 100 * time.Millisecond, dial: dialScache}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(e))
	if text := gatherText(t, reg); !strings.Contains(text, "goscache_up 0\n") {
		t.Errorf("metrics of a silent socket:\n%s", text)
	}
	if !strings.Contains(errb.String(), "bad command startup -- throttling") {
		t.Errorf("exporter's stderr: %q", errb.String())
	}
}

// TestPermissionDenied runs scachectl as an unprivileged user against a
// socket only root may reach (the test binary re-executes itself).
func TestPermissionDenied(t *testing.T) {
	if os.Getenv("SCACHECTL_TEST_CHILD") == "1" {
		args := strings.Split(os.Getenv("SCACHECTL_TEST_ARGS"), " ")
		os.Exit(exitCode(run(context.Background(), args, os.Stdout, os.Stderr), os.Stderr))
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as nobody")
	}
	dir, err := os.MkdirTemp("", "scachectl-perm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "scache")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Chmod(sock, 0o600)
	// The test binary sits in a private build directory: run a copy.
	exe := fdtest.CopyTestBinary(t, dir, "scachectl.test")
	cmd := execAsNobody(t, exe, "-test.run=^TestPermissionDenied$")
	cmd.Env = append(os.Environ(), "SCACHECTL_TEST_CHILD=1", "SCACHECTL_TEST_ARGS=-socket "+sock+" stats")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied on "+sock+": the cache socket is normally only reachable by root or the postfix user") {
		t.Errorf("as nobody: %v\n%s", err, out)
	}
}

// TestInstanceSocket: without -socket, scachectl asks postconf for the
// instance's socket: the default instance, or the one -c or MAIL_CONFIG
// names, which must exist (never another instance's socket instead).
// Without postconf it reads a named instance's main.cf.
func TestInstanceSocket(t *testing.T) {
	inst := t.TempDir()
	if err := os.WriteFile(filepath.Join(inst, "main.cf"), []byte("# out\nqueue_directory = /q/out\n\nconnection_cache_service_name =\n  goscache\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dollar := t.TempDir()
	if err := os.WriteFile(filepath.Join(dollar, "main.cf"), []byte("queue_directory = $spool/postfix\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noMainCF := t.TempDir()
	// A postconf that answers for the instance -c names, and for the
	// default instance otherwise (as the real one does, MAIL_CONFIG too).
	fake := "#!/bin/sh\nif [ \"$1\" = -c ]; then echo \"$2/queue\"; echo svc; exit 0; fi\n" +
		"if [ -n \"$MAIL_CONFIG\" ]; then echo \"$MAIL_CONFIG/queue\"; echo svc; exit 0; fi\necho /default/queue\necho myscache\n"
	postconfs := map[string]string{
		"fake":    fake,
		"failing": "#!/bin/sh\necho 'postconf: fatal: open /x/main.cf: No such file or directory' >&2\nexit 1\n",
		"none":    "",
	}
	tests := []struct {
		name       string
		postconf   string
		mailConfig string
		args       []string
		code       int
		want       string // in stderr
	}{
		{"default instance", "fake", "", nil, exitError, "no cache socket at /default/queue/private/myscache"},
		{"-c", "fake", "", []string{"-c", inst}, exitError, "no cache socket at " + inst + "/queue/private/svc"},
		{"-c wins over MAIL_CONFIG", "fake", noMainCF, []string{"-c", inst}, exitError, "no cache socket at " + inst + "/queue/private/svc"},
		{"MAIL_CONFIG", "fake", inst, nil, exitError, "no cache socket at " + inst + "/queue/private/svc"},
		{"MAIL_CONFIG names nothing", "fake", "/nonexistent", nil, exitError, "MAIL_CONFIG /nonexistent names no Postfix instance"},
		{"-c without main.cf", "fake", "", []string{"-c", noMainCF}, exitError, "-c " + noMainCF + " names no Postfix instance"},
		{"postconf fails on the instance", "failing", "", []string{"-c", inst}, exitError, "-c " + inst + ": postconf -c " + inst + " queue_directory connection_cache_service_name: postconf: fatal"},
		{"no postconf: main.cf read", "none", "", []string{"-c", inst}, exitError, "no cache socket at /q/out/private/goscache"},
		{"no postconf: $name", "none", "", []string{"-c", dollar}, exitError, "refers to other parameters"},
		{"default instance, no postconf", "none", "", nil, exitError, "no cache socket at /var/spool/postfix/private/scache"},
		{"default instance, failing postconf", "failing", "", nil, exitError, "no cache socket at /var/spool/postfix/private/scache"},
		{"-socket and -c", "fake", "", []string{"-socket", "/s", "-c", inst}, exitUsage, "give -socket or -c, not both"},
		{"-socket wins over MAIL_CONFIG", "fake", "/nonexistent", []string{"-socket", "/s"}, exitError, "no cache socket at /s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := t.TempDir()
			if script := postconfs[tt.postconf]; script != "" {
				if err := os.WriteFile(filepath.Join(bin, "postconf"), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", bin)
			t.Setenv("MAIL_CONFIG", tt.mailConfig)
			r := runCLI(t, append(tt.args, "stats")...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
		})
	}
}

// wrongProtocolServer announces another protocol.
func wrongProtocolServer(t *testing.T) string {
	t.Helper()
	return fdtest.ServeUnix(t, func(nc net.Conn) {
		nc.Write([]byte("protocol\x00something_else\x00\x00"))
	})
}

func dialFD(t *testing.T, addr string) int {
	t.Helper()
	fd, err := dialTCP(t.Context(), addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func identity(t *testing.T, fd int) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(st.Dev, st.Ino)
}

func TestUnquote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`smtp\nexample.com\n`, "smtp\nexample.com\n"},
		{`"smtp\nexample.com\n"`, "smtp\nexample.com\n"},
		{`a"b`, `a"b`},
		{`a\"b`, `a"b`},
		{`tab\there \\ \x00`, "tab\there \\ \x00"},
		{"real\nnewline", "real\nnewline"},
		{`ü`, "ü"},
	} {
		got, err := unquote(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("unquote(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if back, err := unquote(quote(tc.want)); err != nil || back != tc.want {
			t.Errorf("unquote(quote(%q)) = %q, %v", tc.want, back, err)
		}
	}
	for _, in := range []string{`\q`, `\x0`, `trailing\`} {
		if _, err := unquote(in); err == nil {
			t.Errorf("unquote(%q) succeeded", in)
		}
	}
}

func TestWriteProps(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "> (empty)\n"},
		{"a=1\nb=2\n\n", "> a=1\n> b=2\n"},
		{"a=1\n\nx=2\n\n", "> a=1\n> --\n> x=2\n"},
		{"bin=\x01\n", "> \"bin=\\x01\"\n"},
		{"no newline", "> no newline\n> (no final newline)\n"},
		{"\n\n", "> \"\\n\\n\"\n"},
	} {
		var b bytes.Buffer
		writeProps(&b, "> ", tc.in)
		if b.String() != tc.want {
			t.Errorf("writeProps(%q) = %q, want %q", tc.in, b.String(), tc.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		msg  string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{&usageError{msg: "bad"}, 2, "scachectl: bad\n"},
		{&usageError{msg: "bad", printed: true}, 2, ""},
		{fmt.Errorf("stats: %w", errFallback), 3, "scachectl: stats: the peer does not support"},
		{errors.New("boom"), 1, "scachectl: boom\n"},
	} {
		var b bytes.Buffer
		if got := exitCode(tc.err, &b); got != tc.code || !strings.HasPrefix(b.String(), tc.msg) || (tc.msg == "" && b.Len() > 0) {
			t.Errorf("exitCode(%v) = %d, %q; want %d, %q", tc.err, got, b.String(), tc.code, tc.msg)
		}
	}
}

func TestParse_flagsAfterArguments(t *testing.T) {
	var b bytes.Buffer
	e := &env{stderr: &b}
	fs := e.flags("x", "")
	take := fs.Bool("take", false, "")
	pos, err := parse(fs, []string{"LABEL", "-take", "--", "-not-a-flag"}, 1, 2)
	if err != nil || !*take || !cmp.Equal(pos, []string{"LABEL", "-not-a-flag"}) {
		t.Errorf("parse = %q, %v, take=%v", pos, err, *take)
	}
}

// execAsNobody prepares a command that runs as the user nobody.
func execAsNobody(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd
}

// TestPostfixScache runs scachectl against Postfix's own scache: the
// extension requests get status=1 (scachectl says so and falls back), the
// standard requests work, and find gives connections back.
func TestPostfixScache(t *testing.T) {
	sock, logs := fdtest.StartPostfixScache(t, "connection_cache_ttl_limit = 60s\n")
	sk := fdtest.NewTCPPeer(t)
	endp := `smtp\n127.0.0.1\n` + sk.Port() + `\n1\n`

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"stats", []string{"stats"}},
		{"stats_json", []string{"stats", "-json"}},
		{"dump", []string{"dump"}},
	} {
		r := runCLI(t, append([]string{"-socket", sock}, tc.args...)...)
		if r.code != exitFallback {
			t.Errorf("%s: exit %d, err %v; want %d", tc.name, r.code, r.err, exitFallback)
		}
		// The same output as against the fake that rejects extensions.
		golden(t, "noext_"+tc.name+".txt", normalize(r.stdout+"-- stderr:\n"+r.stderr, sock, ""))
	}
	if !strings.Contains(logs.String(), `warning: unrecognized request: "goscache_stats", ignored`) {
		t.Errorf("scache's log lacks the unrecognized request warning:\n%s", logs)
	}

	mustRun(t, "-socket", sock, "save-endp", "-ttl", "60s", sk.Addr())
	mustRun(t, "-socket", sock, "save-dest", "-ttl", "60s", destLabel, endp)
	out := normalize(mustRun(t, "-socket", sock, "find-endp", endp), sock, sk.Port())
	if !strings.Contains(out, "hit: endpoint") || !strings.Contains(out, "peer 127.0.0.1:PORT") || !strings.Contains(out, "connection given back") {
		t.Errorf("find-endp against Postfix's scache:\n%s", out)
	}
	r := runCLI(t, "-socket", sock, "find-dest", destLabel)
	if r.code != exitError || !strings.Contains(r.stderr, "give -endp LABEL to give it back, or -take") {
		t.Errorf("find-dest without -endp: exit %d, stderr %q", r.code, r.stderr)
	}
	out = normalize(mustRun(t, "-socket", sock, "find-dest", "-endp", endp, destLabel), sock, sk.Port())
	if !strings.Contains(out, "hit: destination") || !strings.Contains(out, "connection given back") {
		t.Errorf("find-dest -endp against Postfix's scache:\n%s", out)
	}
	out = mustRun(t, "-socket", sock, "find-endp", "-take", endp)
	if !strings.Contains(out, "connection closed") {
		t.Errorf("find-endp -take:\n%s", out)
	}
	out = mustRun(t, "-socket", sock, "find-endp", endp)
	if !strings.HasPrefix(out, "miss:") {
		t.Errorf("find-endp after -take:\n%s", out)
	}
}

// TestFindEndp_emptyLabel: a connection cached under the empty endpoint
// label (another client may save one) is found and given back under it;
// find-endp used to guess the endpoint as find-dest does and dereference
// find_dest's absent destination property.
func TestFindEndp_emptyLabel(t *testing.T) {
	srv := scachetest.NewServer(t, server.Options{TTLLimit: time.Hour, StatusUpdateTime: -1})
	sk := fdtest.NewTCPPeer(t)
	fd := dialFD(t, sk.Addr())
	if st, err := srv.Client(t).SaveEndp("", "e\n\n", fd, 60*time.Second); st != 0 || err != nil {
		t.Fatal(st, err)
	}
	out := mustRun(t, "-socket", srv.Path, "find-endp", "")
	if !strings.Contains(out, "given back") {
		t.Fatalf("find-endp output:\n%s", out)
	}
	snap := srv.Srv.Cache().Snapshot()
	if len(snap.Endps) != 1 || snap.Endps[0].Label != "" || len(snap.Endps[0].Sessions) != 1 {
		t.Errorf("cache after find-endp: %+v", snap)
	}
}
