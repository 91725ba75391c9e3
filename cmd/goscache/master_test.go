package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/cmd/internal/buildinfo"
	"github.com/goscache/goscache/mastercompat"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/scachetest"
)

// These tests start the test binary the way master(8) starts scache:
// fds 3/4 flow pipe, 5 status socketpair, 6 listening socket, GENERATION
// and MAIL_CONFIG in the environment. envMasterChild makes
// TestMasterChildHelper run masterMain instead of a test (the TestPassFD
// pattern). The child logs through postlog to a datagram socket that the
// test reads, so every log line is checked as Postfix would write it.
const (
	envMasterChild = "GOSCACHE_TEST_MASTER_CHILD"
	envMasterArgv  = "GOSCACHE_TEST_MASTER_ARGV"
	// envMailVersion, when set, is the mail_version the child is told
	// (the release of the Postfix it runs under).
	envMailVersion = "GOSCACHE_TEST_MAIL_VERSION"
)

func TestMasterChildHelper(t *testing.T) {
	if os.Getenv(envMasterChild) != "1" {
		t.Skip("helper process for the master child tests")
	}
	o := masterOptions{
		lookupEnv: os.LookupEnv,
		stdinTTY:  func() bool { return false },
	}
	if v, ok := os.LookupEnv(envMailVersion); ok {
		o.mailVersion = func(context.Context, string) string { return v }
	}
	err := masterMain(context.Background(), strings.Fields(os.Getenv(envMasterArgv)), os.Stderr, o)
	os.Exit(exitCode(err, os.Stderr)) // as main does
}

type masterChild struct {
	cmd    *exec.Cmd
	status net.Conn // master's end of the status channel
	sock   string
	logs   *net.UnixConn // postlog socket
	done   chan error
	stderr bytes.Buffer
}

// startMasterChild writes main.cf (queue_directory in a temporary
// directory, postlog logging) plus extra lines, and starts the child.
func startMasterChild(t *testing.T, argv, mainCF string, env ...string) *masterChild {
	t.Helper()
	qdir := t.TempDir()
	// The queue directory must be reachable by mail_owner when the child
	// drops privileges (t.TempDir parents are 0700).
	if err := os.Chmod(filepath.Dir(qdir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"public", "private"} {
		if err := os.Mkdir(filepath.Join(qdir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cf := fmt.Sprintf("queue_directory = %s\nmaillog_file = /var/log/goscache-test.log\nmyhostname = mx1.example\n%s", qdir, mainCF)
	if err := os.WriteFile(filepath.Join(qdir, "main.cf"), []byte(cf), 0o644); err != nil {
		t.Fatal(err)
	}
	logs, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(qdir, "public", "postlog"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	childEnd, masterFile := os.NewFile(uintptr(fds[0]), "status child"), os.NewFile(uintptr(fds[1]), "status master")
	masterEnd, err := net.FileConn(masterFile)
	if err != nil {
		t.Fatal(err)
	}
	masterFile.Close()
	t.Cleanup(func() { masterEnd.Close() })
	flowR, flowW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(qdir, "private", "scache")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o666)
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	c := &masterChild{status: masterEnd, sock: sock, logs: logs, done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestMasterChildHelper$")
	c.cmd.Env = append([]string{envMasterChild + "=1", envMasterArgv + "=" + argv, "MAIL_CONFIG=" + qdir,
		"MAIL_LOGTAG=postfix", "LANG=C", "GENERATION=17",
		// master exports these when maillog_file is set, so that a child
		// logs to postlogd before it has read main.cf.
		"POSTLOG_SERVICE=" + filepath.Join(qdir, "public", "postlog"), "POSTLOG_HOSTNAME=mx1.example"}, env...)
	// Under -cover the child would warn on stderr without a place for its
	// coverage data; keep its stderr as master would see it.
	c.cmd.Env = append(c.cmd.Env, "GOCOVERDIR="+t.TempDir())
	c.cmd.ExtraFiles = []*os.File{flowR, flowW, childEnd, lf}
	c.cmd.Stderr = &c.stderr
	c.cmd.Stdin = nil
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{flowR, flowW, childEnd, lf} {
		f.Close()
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// wait returns the child's exit status: code, or the signal that killed it.
func (c *masterChild) wait(t *testing.T) (code int, sig syscall.Signal) {
	t.Helper()
	err := <-c.done
	c.done <- err
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return -1, ws.Signal()
		}
		return ws.ExitStatus(), 0
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, 0
}

// records reads the status channel to its end (the child's exit, or its
// close after master's) and returns the availability of each record, each
// checked for the child's pid and GENERATION=17 read as octal.
func (c *masterChild) records(t *testing.T) []int32 {
	t.Helper()
	b, err := io.ReadAll(c.status)
	if err != nil || len(b)%mastercompat.RecordSize != 0 {
		t.Fatalf("status channel: %d bytes, %v", len(b), err)
	}
	var records []int32
	for i := 0; i < len(b); i += mastercompat.RecordSize {
		pid, gen, avail, err := mastercompat.ParseRecord(b[i : i+mastercompat.RecordSize])
		if err != nil || pid != int32(c.cmd.Process.Pid) || gen != 15 {
			t.Fatalf("status record {pid %d gen %d avail %d} (%v), want pid %d gen 15", pid, gen, avail, err, c.cmd.Process.Pid)
		}
		records = append(records, avail)
	}
	return records
}

// logLines reads every log datagram that has arrived, with the time stamp
// and host name cut off ("postfix/scache[pid]: text").
func (c *masterChild) logLines(t *testing.T) []string {
	t.Helper()
	var lines []string
	buf := make([]byte, 4096)
	for {
		c.logs.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.logs.Read(buf)
		if err != nil {
			return lines
		}
		line := string(buf[:n])
		const stampHost = len("Mar 05 01:02:03 mx1 ")
		if len(line) < stampHost || line[stampHost-4:stampHost] != "mx1 " {
			t.Errorf("malformed postlog record %q", line)
			continue
		}
		lines = append(lines, line[stampHost:])
	}
}

func privileged() bool {
	if os.Getuid() != 0 {
		return false
	}
	_, err := user.Lookup("postfix")
	return err == nil
}

func TestMaster_serveAndReload(t *testing.T) {
	argv := "goscache -l -n scache -t unix"
	if privileged() {
		argv += " -u -c" // Debian's stock entry: chroot and drop to postfix
	}
	c := startMasterChild(t, argv, "")
	ctx := t.Context()
	cl, err := client.Dial(ctx, c.sock) // checks the announcement
	if err != nil {
		t.Fatalf("dial: %v; stderr:\n%s", err, &c.stderr)
	}
	defer cl.Close()
	// A socket, as smtp(8) caches: a pipe or file would add goscache's
	// "is not a socket" warning to the log.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	if st, err := cl.SaveEndp("endp", "prop", pair[0], 2*time.Second); err != nil || st != scache.StatusOK {
		t.Fatalf("SaveEndp = %d, %v", st, err)
	}
	res, err := cl.FindEndp("endp")
	fd, prop, st := res.FD, res.EndpProp, res.Status
	if err != nil || st != scache.StatusOK || prop != "prop" {
		t.Fatalf("FindEndp = %d, %q, %d, %v", fd, prop, st, err)
	}
	unix.Close(fd)
	if res, err := cl.FindEndp("endp"); err != nil || res.Status != scache.StatusFail {
		t.Fatalf("second FindEndp = %d, %v; want a miss", res.Status, err)
	}
	// One TAKEN/AVAIL pair, around the first batch of requests, from the
	// child's pid and with GENERATION=17 read as octal: with -l, master
	// uses the records only to count that the child served once
	// (docs/protocol.md §5). Then postfix reload: master closes its end of
	// the status channel (here it stops writing, so that what the child
	// wrote up to its exit can still be read).
	c.status.(*net.UnixConn).CloseWrite()
	if diff := cmp.Diff([]int32{mastercompat.StatusTaken, mastercompat.StatusAvail}, c.records(t)); diff != "" {
		t.Errorf("status records mismatch (-want +got):\n%s", diff)
	}
	c.status.Close()
	if code, sig := c.wait(t); code != 0 || sig != 0 {
		t.Fatalf("exit code %d signal %v, want 0; stderr:\n%s", code, sig, &c.stderr)
	}
	tag := fmt.Sprintf("postfix/scache[%d]: ", c.cmd.Process.Pid)
	got := c.logLines(t)
	want := []string{
		tag + "statistics: start interval ",
		tag + "statistics: address lookup hits=1 miss=1 success=50%",
		tag + "statistics: max simultaneous domains=0 addresses=1 connection=1",
	}
	if len(got) != len(want) {
		t.Fatalf("log lines:\n%s\nwant %d lines like:\n%s", strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("log line %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// TestMaster_reloadInFlight: postfix reload while a request is arriving
// and another client sits idle. Postfix's scache notices master's
// disconnect only between requests: strace of Debian's 3.7.11 shows it
// reading the rest of a request that had begun before the reload,
// answering it, failing to write its AVAIL record (EPIPE), logging its
// statistics and exiting, which closes the idle client's connection
// (docs/protocol.md, "postfix reload"). goscache must answer that request
// too, and must not read from the idle client again.
func TestMaster_reloadInFlight(t *testing.T) {
	c := startMasterChild(t, "goscache -l -n scache -t unix", "")
	dial := func() net.Conn {
		t.Helper()
		raw, err := net.Dial("unix", c.sock)
		if err != nil {
			t.Fatalf("dial: %v; stderr:\n%s", err, &c.stderr)
		}
		t.Cleanup(func() { raw.Close() })
		raw.SetDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, len(scachetest.Announcement))
		if _, err := io.ReadFull(raw, buf); err != nil || string(buf) != scachetest.Announcement {
			t.Fatalf("announcement %q, %v", buf, err)
		}
		return raw
	}
	inFlight, idle := dial(), dial()
	if _, err := inFlight.Write([]byte("request\x00find_dest\x00")); err != nil {
		t.Fatal(err)
	}
	// The TAKEN record says the request is in progress.
	rec := make([]byte, mastercompat.RecordSize)
	c.status.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c.status, rec); err != nil {
		t.Fatalf("status record: %v; stderr:\n%s", err, &c.stderr)
	}
	if _, _, avail, _ := mastercompat.ParseRecord(rec); avail != mastercompat.StatusTaken {
		t.Fatalf("first status record avail=%d, want TAKEN", avail)
	}
	// postfix reload: master closes its end of the status channel (here:
	// stops writing, so the child's exit can be seen).
	c.status.(*net.UnixConn).CloseWrite()
	// The idle client is let go without a reply, and without a read: it
	// sees the end of the connection once goscache has begun to exit.
	if got, err := io.ReadAll(idle); err != nil || len(got) != 0 {
		t.Fatalf("idle client after the reload: %q, %v; want the end of the connection", got, err)
	}
	// The request in progress is finished and answered, as by scache.
	if _, err := inFlight.Write([]byte("label\x00d\x00\x00")); err != nil {
		t.Fatal(err)
	}
	const miss = "status\x002\x00property\x00\x00property\x00\x00\x00"
	if got, err := io.ReadAll(inFlight); err != nil || string(got) != miss {
		t.Fatalf("request in flight across the reload: got %q, %v; want %q, then the end of the connection", got, err, miss)
	}
	if code, sig := c.wait(t); code != 0 || sig != 0 {
		t.Fatalf("exit code %d signal %v, want 0; stderr:\n%s", code, sig, &c.stderr)
	}
	tag := fmt.Sprintf("postfix/scache[%d]: ", c.cmd.Process.Pid)
	got := c.logLines(t)
	want := []string{
		tag + "statistics: start interval ",
		tag + "statistics: domain lookup hits=0 miss=1 success=0%",
	}
	if len(got) != len(want) {
		t.Fatalf("log lines:\n%s\nwant %d lines like:\n%s", strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("log line %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestMaster_maxIdle(t *testing.T) {
	c := startMasterChild(t, "goscache -l -n scache -t unix -o max_idle=1s", "")
	cl, err := client.Dial(t.Context(), c.sock)
	if err != nil {
		t.Fatalf("dial: %v; stderr:\n%s", err, &c.stderr)
	}
	if res, err := cl.FindEndp("nothing"); err != nil || res.Status != scache.StatusFail {
		t.Fatalf("FindEndp = %d, %v", res.Status, err)
	}
	// A connected client keeps the child alive past max_idle.
	time.Sleep(1500 * time.Millisecond)
	if res, err := cl.FindEndp("nothing"); err != nil || res.Status != scache.StatusFail {
		t.Fatalf("FindEndp after max_idle with the client connected = %d, %v", res.Status, err)
	}
	cl.Close()
	if code, sig := c.wait(t); code != 0 || sig != 0 {
		t.Fatalf("exit code %d signal %v, want 0; stderr:\n%s", code, sig, &c.stderr)
	}
	logs := strings.Join(c.logLines(t), "\n")
	if !strings.Contains(logs, "statistics: address lookup hits=0 miss=2 success=0%") {
		t.Errorf("no statistics after the idle exit:\n%s", logs)
	}
}

func TestMaster_sigterm(t *testing.T) {
	c := startMasterChild(t, "scache -l -t unix", "")
	cl, err := client.Dial(t.Context(), c.sock)
	if err != nil {
		t.Fatalf("dial: %v; stderr:\n%s", err, &c.stderr)
	}
	defer cl.Close()
	if _, err := cl.FindEndp("x"); err != nil {
		t.Fatal(err)
	}
	c.cmd.Process.Signal(syscall.SIGTERM) // postfix stop
	if _, sig := c.wait(t); sig != syscall.SIGTERM {
		t.Fatalf("child not killed by SIGTERM (signal %v); stderr:\n%s", sig, &c.stderr)
	}
	if logs := c.logLines(t); len(logs) != 0 {
		t.Errorf("logged on SIGTERM, want nothing (no statistics):\n%s", strings.Join(logs, "\n"))
	}
}

func TestMaster_fatal(t *testing.T) {
	tests := []struct {
		name, argv, mainCF string
		env                []string
		request            bool     // the fatal error comes with the first request
		warnings           []string // logged before the fatal error
		want               string
	}{
		{name: "no -l", argv: "goscache -n scache -t unix -u -c", want: "fatal: service scache requires a process limit of 1"},
		{name: "bad generation", argv: "scache -l -t unix", env: []string{"GENERATION=8x"}, want: "fatal: bad generation: 8x"},
		{name: "bad option", argv: "scache -l -t unix -q", want: "fatal: invalid option: q"},
		{name: "bad -o", argv: "scache -l -t unix -o foo", want: `fatal: invalid "-o foo" option value: missing '=' after attribute name`},
		{name: "bad ttl limit", argv: "scache -l -t unix", mainCF: "connection_cache_ttl_limit = 0\n", want: "fatal: invalid connection_cache_ttl_limit: 0 (min 1)"},
		{name: "bad time unit", argv: "scache -l -t unix -o connection_cache_status_update_time=10x", want: "fatal: parameter connection_cache_status_update_time: bad time value or unit: 10x"},
		{name: "unknown mail_owner", argv: "scache -l -t unix -u", mainCF: "mail_owner = no-such-user-x\n", want: "fatal: file %s/main.cf: parameter mail_owner: unknown user name value: no-such-user-x"},
		// Expansion syntax errors, with the texts of the real scache
		// (-V copies the log to stderr, which is compared too).
		{
			name: "macro error in ttl limit", argv: "scache -l -t unix -V", mainCF: "connection_cache_ttl_limit = ${{2s} == }\n",
			warnings: []string{`warning: "{expression}" expected at: "...{2s} ==>>> "`},
			want:     "fatal: dictionary mail_dict: macro processing error",
		},
		{
			name: "macro error in mydomain", argv: "scache -l -t unix -V", mainCF: "mydomain = ${{a} = {b}}\n",
			warnings: []string{`warning: "==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>>= {b}"`},
			want:     "fatal: dictionary mail_dict: macro processing error",
		},
		{
			name: "macro error in -o mydomain", argv: "scache -l -t unix -o mydomain=${{a}<={b}x}",
			warnings: []string{`warning: "?" or ":" expected at: "...}>>>x"`},
			want:     "fatal: dictionary mail_dict: macro processing error",
		},
		{
			name: "first macro error only", argv: "scache -l -t unix -V", mainCF: "connection_cache_ttl_limit = ${{2s} == }\nmydomain = ${{a} = {b}}\n",
			warnings: []string{`warning: "==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>>= {b}"`},
			want:     "fatal: dictionary mail_dict: macro processing error",
		},
		{name: "leftover argument", argv: "scache -l -t unix extra", request: true, want: "fatal: unexpected command-line argument: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startMasterChild(t, tt.argv, tt.mainCF, tt.env...)
			if tt.request {
				cl, err := client.Dial(t.Context(), c.sock)
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				// msg_fatal before the reply: the child exits
				// without answering.
				if res, err := cl.FindEndp("x"); err == nil {
					t.Errorf("FindEndp answered status %d, want no reply", res.Status)
				}
			}
			if code, sig := c.wait(t); code != 1 || sig != 0 {
				t.Errorf("exit code %d signal %v, want exit code 1; stderr:\n%s", code, sig, &c.stderr)
			}
			// What master(8) sees on the status channel before the
			// exit: nothing for a startup error; for the first request,
			// the TAKEN record multi_server_execute writes before it
			// calls scache_service, and no AVAIL, since msg_fatal exits
			// inside the service (master then logs the exit status and
			// throttles the service: "bad command startup").
			var wantRecords []int32
			if tt.request {
				wantRecords = []int32{mastercompat.StatusTaken}
			}
			if diff := cmp.Diff(wantRecords, c.records(t)); diff != "" {
				t.Errorf("status records (-want +got):\n%s", diff)
			}
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, c.cmd.Env[2][len("MAIL_CONFIG="):])
			}
			var wantLog, wantStderr []string
			for _, line := range append(slices.Clip(tt.warnings), want) {
				wantLog = append(wantLog, fmt.Sprintf("postfix/scache[%d]: %s", c.cmd.Process.Pid, line))
				if slices.Contains(strings.Fields(tt.argv), "-V") {
					wantStderr = append(wantStderr, "postfix/scache: "+line)
				}
			}
			if diff := cmp.Diff(wantLog, c.logLines(t)); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			// Nothing else on stderr: main prints an error only when it
			// was not logged already.
			var gotStderr []string
			if s := c.stderr.String(); s != "" {
				gotStderr = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
			}
			if diff := cmp.Diff(wantStderr, gotStderr); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// A syntax error in a parameter that scache does not expand at startup is
// harmless, as in the real scache.
func TestMaster_unrelatedMacroError(t *testing.T) {
	c := startMasterChild(t, "scache -l -t unix", "unrelated_param = ${{a} = {b}}\n")
	cl, err := client.Dial(t.Context(), c.sock)
	if err != nil {
		t.Fatalf("dial: %v; stderr:\n%s", err, &c.stderr)
	}
	defer cl.Close()
	if res, err := cl.FindEndp("x"); err != nil || res.Status != scache.StatusFail {
		t.Fatalf("FindEndp = %d, %v", res.Status, err)
	}
	c.status.Close() // postfix reload
	if code, sig := c.wait(t); code != 0 || sig != 0 {
		t.Fatalf("exit code %d signal %v, want 0; stderr:\n%s", code, sig, &c.stderr)
	}
	for _, line := range c.logLines(t) {
		if strings.Contains(line, "warning") || strings.Contains(line, "fatal") {
			t.Errorf("logged %q", line)
		}
	}
}

// TestMaster_versionLine: under master(8) the version is logged only with
// -v, as a debug line: Postfix's scache logs no version, and its log lines
// are parsed by log readers.
func TestMaster_versionLine(t *testing.T) {
	line := "goscache " + buildinfo.Get().String()
	for _, tt := range []struct {
		argv string
		want bool
	}{
		{"goscache -l -n scache -t unix", false},
		{"goscache -l -n scache -t unix -v", true},
	} {
		t.Run(tt.argv, func(t *testing.T) {
			c := startMasterChild(t, tt.argv, "")
			cl, err := client.Dial(t.Context(), c.sock)
			if err != nil {
				t.Fatalf("dial: %v; stderr:\n%s", err, &c.stderr)
			}
			if _, err := cl.FindEndp("x"); err != nil {
				t.Fatal(err)
			}
			cl.Close()
			c.status.Close() // postfix reload
			if code, sig := c.wait(t); code != 0 || sig != 0 {
				t.Fatalf("exit code %d signal %v; stderr:\n%s", code, sig, &c.stderr)
			}
			logs := strings.Join(c.logLines(t), "\n")
			if got := strings.Contains(logs, line); got != tt.want {
				t.Errorf("version line %q logged: %v, want %v:\n%s", line, got, tt.want, logs)
			}
		})
	}
}
