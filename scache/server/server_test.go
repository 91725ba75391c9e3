package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
)

func TestServer_endpoint(t *testing.T) {
	ts := scachetest.NewServer(t, server.Options{})
	c := ts.Client(t)
	fd := fdtest.PipeFD(t)
	if st, err := c.SaveEndp("smtp\n127.0.0.1\n25\n0\n", "tls_level=0\n", fd, 2*time.Second); err != nil || st != scache.StatusOK {
		t.Fatalf("SaveEndp = %d, %v", st, err)
	}
	res, err := c.FindEndp("smtp\n127.0.0.1\n25\n0\n")
	got, prop, st := res.FD, res.EndpProp, res.Status
	if err != nil || st != scache.StatusOK {
		t.Fatalf("FindEndp = %d, %v", st, err)
	}
	defer unix.Close(got)
	if !fdtest.SameFile(t, fd, got) || prop != "tls_level=0\n" {
		t.Errorf("FindEndp returned another file or prop %q", prop)
	}
	// The session was handed out: a second find misses.
	if res, err := c.FindEndp("smtp\n127.0.0.1\n25\n0\n"); err != nil || res.Status != scache.StatusFail || res.FD != -1 {
		t.Errorf("second FindEndp = %d, %d, %v; want a miss", res.FD, res.Status, err)
	}
}

func TestServer_destination(t *testing.T) {
	ts := scachetest.NewServer(t, server.Options{})
	c := ts.Client(t)
	fd1, fd2 := fdtest.PipeFD(t), fdtest.PipeFD(t)
	if st, err := c.SaveDest("smtp\nexample.com\n", "destination=example.com\n", "E", 2*time.Second); err != nil || st != scache.StatusOK {
		t.Fatalf("SaveDest = %d, %v", st, err)
	}
	for _, fd := range []int{fd1, fd2} {
		if st, err := c.SaveEndp("E", map[int]string{fd1: "ep1", fd2: "ep2"}[fd], fd, 2*time.Second); err != nil || st != scache.StatusOK {
			t.Fatalf("SaveEndp = %d, %v", st, err)
		}
	}
	// Oldest session first.
	for i, want := range []struct {
		fd   int
		prop string
	}{{fd1, "ep1"}, {fd2, "ep2"}} {
		res, err := c.FindDest("smtp\nexample.com\n")
		got, dp, ep, st := res.FD, res.DestProp, res.EndpProp, res.Status
		if err != nil || st != scache.StatusOK {
			t.Fatalf("find %d = %d, %v", i, st, err)
		}
		if !fdtest.SameFile(t, want.fd, got) || dp != "destination=example.com\n" || ep != want.prop {
			t.Errorf("find %d: wrong session (props %q %q)", i, dp, ep)
		}
		unix.Close(got)
	}
	if res, err := c.FindDest("smtp\nexample.com\n"); err != nil || res.Status != scache.StatusFail || res.FD != -1 || res.DestProp != "" || res.EndpProp != "" {
		t.Errorf("third find = %d %q %q %d %v; want a miss", res.FD, res.DestProp, res.EndpProp, res.Status, err)
	}
}

func TestServer_ttlClamped(t *testing.T) {
	ts := scachetest.NewServer(t, server.Options{TTLLimit: 3 * time.Second})
	c := ts.Client(t)
	if st, err := c.SaveEndp("E", "p", fdtest.PipeFD(t), 1000*time.Second); err != nil || st != scache.StatusOK {
		t.Fatalf("SaveEndp = %d, %v", st, err)
	}
	snap := ts.Srv.Cache().Snapshot()
	if len(snap.Endps) != 1 || len(snap.Endps[0].Sessions) != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	s := snap.Endps[0].Sessions[0]
	if d := s.Expires.Sub(s.Created); d != 3*time.Second {
		t.Errorf("ttl %v, want the 3s limit", d)
	}
}

// TestServer_gluedDummy sends the trailing dummy of a find hit and the next
// request in one write: both are processed.
func TestServer_gluedDummy(t *testing.T) {
	ts := scachetest.NewServer(t, server.Options{})
	c := ts.Client(t)
	if st, err := c.SaveEndp("E", "p", fdtest.PipeFD(t), 2*time.Second); err != nil || st != scache.StatusOK {
		t.Fatalf("SaveEndp = %d, %v", st, err)
	}
	raw := ts.Raw(t)
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	mustWrite(t, raw, "request\x00find_endp\x00label\x00E\x00\x00")
	mustRead(t, raw, "status\x000\x00property\x00p\x00\x00")
	mustWrite(t, raw, "dummy\x00\x00\x00")
	buf, oob := make([]byte, 1), make([]byte, 64)
	_, oobn, _, _, err := raw.ReadMsgUnix(buf, oob)
	if err != nil || oobn == 0 {
		t.Fatalf("recvmsg: %v (oob %d)", err, oobn)
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	fds, _ := unix.ParseUnixRights(&msgs[0])
	unix.Close(fds[0])
	mustWrite(t, raw, "dummy\x00\x00\x00request\x00find_endp\x00label\x00E\x00\x00")
	mustRead(t, raw, "status\x002\x00property\x00\x00\x00")
}

// TestServer_pipelined: every complete buffered request is answered, in
// order (a deliberate difference from Postfix, which drops all but the
// first).
func TestServer_pipelined(t *testing.T) {
	ts := scachetest.NewServer(t, server.Options{})
	raw := ts.Raw(t)
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	mustWrite(t, raw, "request\x00save_dest\x00ttl\x002\x00label\x00D\x00property\x00P\x00label\x00E\x00\x00"+
		"request\x00find_dest\x00label\x00D\x00\x00"+
		"request\x00frob\x00\x00")
	mustRead(t, raw, "status\x000\x00\x00"+"status\x002\x00property\x00\x00property\x00\x00\x00"+"status\x001\x00\x00")
}

// TestServer_stalledClient: a client stuck in the middle of a request does
// not delay another one.
func TestServer_stalledClient(t *testing.T) {
	ts := scachetest.NewServer(t, server.Options{})
	stuck := ts.Raw(t)
	mustWrite(t, stuck, "request\x00find_endp\x00lab")
	c := ts.Client(t)
	if st, err := c.SaveDest("D", "P", "E", 2*time.Second); err != nil || st != scache.StatusOK {
		t.Fatalf("SaveDest = %d, %v", st, err)
	}
	// The stuck client finishes later and is served.
	stuck.SetDeadline(time.Now().Add(10 * time.Second))
	mustWrite(t, stuck, "el\x00E\x00\x00")
	mustRead(t, stuck, "status\x002\x00property\x00\x00\x00")
}

// TestServer_ipcTimeout: a client silent in the middle of a request gets
// Postfix's timeout warning, a BAD reply and a closed connection.
func TestServer_ipcTimeout(t *testing.T) {
	ts := scachetest.NewServer(t, server.Options{IPCTimeout: 50 * time.Millisecond})
	raw := ts.Raw(t)
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	mustWrite(t, raw, "request\x00find_endp\x00label\x00")
	got, err := io.ReadAll(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := "status\x001\x00property\x00\x00\x00"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestServer_idleOutlivesIPCTimeout: the deadlines a request arms stay
// armed when the client goes idle (conn.go, deadlines), and expire
// there; an idle client is still waited for without a limit, and its next
// request is read and answered within a fresh ipc_timeout.
func TestServer_idleOutlivesIPCTimeout(t *testing.T) {
	// The timeout is long against the 10 ms pause inside a request, so
	// that a loaded machine (CI runs the Docker matrix beside it) cannot
	// stretch the pause past it; the idle spell is three timeouts.
	const timeout = 500 * time.Millisecond
	ts := scachetest.NewServer(t, server.Options{IPCTimeout: timeout})
	raw := ts.Raw(t)
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	for range 2 {
		// In two parts, so that the server reads the second under a
		// deadline.
		mustWrite(t, raw, "request\x00find_endp\x00")
		time.Sleep(10 * time.Millisecond)
		mustWrite(t, raw, "label\x00E\x00\x00")
		mustRead(t, raw, "status\x002\x00property\x00\x00\x00")
		time.Sleep(3 * timeout) // idle for three timeouts
	}
}

// TestServer_vanishingClients: clients that disappear in the middle of a
// descriptor handshake leak nothing, and the server closes every
// descriptor it holds when it is closed.
func TestServer_vanishingClients(t *testing.T) {
	before := fdtest.OpenFDs(t)
	goroutines := runtime.NumGoroutine()
	srv := server.New(server.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	l, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	path := l.Addr().String()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	dial := func() *net.UnixConn {
		nc, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		mustRead(t, nc, scachetest.Announcement)
		return nc.(*net.UnixConn)
	}
	// Saved sessions stay cached until the server closes.
	c, err := client.Dial(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if st, err := c.SaveEndp("E", "p", p[0], 2*time.Second); err != nil || st != 0 {
			t.Fatalf("SaveEndp = %d, %v", st, err)
		}
	}
	c.Close()
	// Gone after the save_endp dummy.
	nc := dial()
	mustWrite(t, nc, "request\x00save_endp\x00ttl\x002\x00label\x00E\x00property\x00p\x00\x00")
	mustRead(t, nc, "dummy\x00\x00\x00")
	nc.Close()
	// Gone after a find hit reply.
	nc = dial()
	mustWrite(t, nc, "request\x00find_endp\x00label\x00E\x00\x00")
	mustRead(t, nc, "status\x000\x00property\x00p\x00\x00")
	nc.Close()
	// Gone after the first dummy of a find hit, without taking the fd.
	nc = dial()
	mustWrite(t, nc, "request\x00find_endp\x00label\x00E\x00\x00")
	mustRead(t, nc, "status\x000\x00property\x00p\x00\x00")
	mustWrite(t, nc, "dummy\x00\x00\x00")
	nc.Close()

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	unix.Close(p[0])
	unix.Close(p[1])
	if after := fdtest.OpenFDs(t); after != before {
		t.Errorf("%d descriptors open after, %d before", after, before)
	}
	// Goroutines may take a moment to return after Close.
	for i := 0; runtime.NumGoroutine() > goroutines; i++ {
		if i == 500 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServer_shutdownTwice(t *testing.T) {
	srv := server.New(server.Options{})
	l, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	c, err := client.Dial(t.Context(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-done; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	// The idle client was disconnected.
	if _, err := c.SaveDest("D", "P", "E", 2*time.Second); err == nil {
		t.Error("request on a connection closed by Shutdown succeeded")
	}
	if err := srv.Shutdown(t.Context()); !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("second Shutdown = %v", err)
	}
	if err := srv.Close(); !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Close after Shutdown = %v", err)
	}
	l2, err := net.Listen("unix", t.TempDir()+"/s2")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l2); !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v", err)
	}
}

// serveInFlight serves srv on a fresh socket and connects a raw client
// that has sent the first half of a find_endp request, so that a request
// is in progress. It returns the client (closed when the test ends), the
// socket path and what Serve returns.
func serveInFlight(t *testing.T, srv *server.Server) (raw net.Conn, path string, served <-chan error) {
	t.Helper()
	l, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	path = l.Addr().String()
	raw, err = net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	mustRead(t, raw, scachetest.Announcement)
	mustWrite(t, raw, "request\x00find_endp\x00lab")
	return raw, path, done
}

func TestServer_closeTwice(t *testing.T) {
	srv := server.New(server.Options{})
	raw, _, done := serveInFlight(t, srv)
	if err := srv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := <-done; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if got, _ := io.ReadAll(raw); len(got) != 0 {
		t.Errorf("got %q after Close", got)
	}
	if err := srv.Close(); !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("second Close = %v", err)
	}
}

// TestServer_shutdownWaits: Shutdown lets a request in progress finish.
func TestServer_shutdownWaits(t *testing.T) {
	busy := make(chan bool, 4)
	srv := server.New(server.Options{Busy: func(b bool) { busy <- b }})
	raw, path, _ := serveInFlight(t, srv)
	<-busy // the request is in progress
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	// Wait until the listener is gone, i.e. Shutdown has begun.
	for {
		c, err := net.Dial("unix", path)
		if err != nil {
			break
		}
		c.Close()
		runtime.Gosched()
	}
	mustWrite(t, raw, "el\x00E\x00\x00")
	mustRead(t, raw, "status\x002\x00property\x00\x00\x00")
	if got, err := io.ReadAll(raw); err != nil || len(got) != 0 {
		t.Errorf("after the reply: %q, %v; want EOF", got, err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
}

// TestServer_shutdownReadsOnlyWhatItAnswers: a request that arrives as
// Shutdown begins is either answered or never read. Which of the two
// depends on the race; what may never happen is a request that was read
// and then dropped unanswered, which would cost smtp(8) a retry at postfix
// reload (docs/protocol.md §6). The client tells the two apart without
// looking inside: a Unix socket closed with its input unread resets the
// peer (ECONNRESET), one whose input was read ends cleanly (EOF).
func TestServer_shutdownReadsOnlyWhatItAnswers(t *testing.T) {
	const reply = "status\x002\x00property\x00\x00property\x00\x00\x00"
	answered, unread := 0, 0
	for range 300 {
		srv := server.New(server.Options{})
		l, err := net.Listen("unix", t.TempDir()+"/s")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		raw, err := net.Dial("unix", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(30 * time.Second))
		mustRead(t, raw, scachetest.Announcement)
		shut := make(chan error, 1)
		go func() { shut <- srv.Shutdown(context.Background()) }()
		runtime.Gosched()
		_, werr := raw.Write([]byte("request\x00find_dest\x00label\x00d\x00\x00"))
		got, rerr := io.ReadAll(raw)
		raw.Close()
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		handled := server.StatsForTest(srv).DestMisses
		switch {
		case werr != nil && len(got) == 0 && handled == 0:
			unread++ // closed before the request was sent
		case werr != nil:
			t.Fatalf("write: %v, then got %q", werr, got)
		case rerr == nil && string(got) == reply && handled == 1:
			answered++
		case errors.Is(rerr, syscall.ECONNRESET) && len(got) == 0 && handled == 0:
			unread++
		default:
			t.Fatalf("got %q, %v with %d requests handled: the request was read and not answered", got, rerr, handled)
		}
	}
	t.Logf("%d answered, %d not read", answered, unread)
}

// TestServer_shutdownContext: Shutdown gives up when ctx is done and
// closes the connections left.
func TestServer_shutdownContext(t *testing.T) {
	busy := make(chan bool, 4)
	srv := server.New(server.Options{Busy: func(b bool) { busy <- b }})
	raw, _, _ := serveInFlight(t, srv)
	<-busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	if got, _ := io.ReadAll(raw); len(got) != 0 {
		t.Errorf("got %q", got)
	}
}

// failingListener fails its first Accepts with errs, then with io.EOF.
type failingListener struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return nil, &net.OpError{Op: "accept", Net: "unix", Err: errors.New("listener broken")}
}
func (l *failingListener) Close() error   { return nil }
func (l *failingListener) Addr() net.Addr { return &net.UnixAddr{Name: "fake", Net: "unix"} }

func TestServe_failingListener(t *testing.T) {
	tmp := func(e syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept", e)}
	}
	l := &failingListener{errs: []error{tmp(syscall.EMFILE), tmp(syscall.ECONNABORTED), tmp(syscall.ENFILE)}}
	var logs strings.Builder
	srv := server.New(server.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	err := srv.Serve(l)
	if err == nil || !strings.Contains(err.Error(), "listener broken") {
		t.Fatalf("Serve = %v, want the permanent accept error", err)
	}
	if l.calls != 4 {
		t.Errorf("%d Accept calls, want 4 (3 retried errors, then the permanent one)", l.calls)
	}
	if n := strings.Count(logs.String(), "accept connection: "); n != 4 {
		t.Errorf("%d accept errors logged, want 4:\n%s", n, logs.String())
	}
	srv.Close()
}

func TestServer_hooks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	conns := make(chan int, 10)
	srv := server.New(server.Options{
		Busy: func(b bool) {
			mu.Lock()
			defer mu.Unlock()
			if b {
				events = append(events, "busy")
			} else {
				events = append(events, "idle")
			}
		},
		ConnCount: func(n int) { conns <- n },
	})
	ts := scachetest.Serve(t, srv)
	c := ts.Client(t)
	if n := <-conns; n != 1 {
		t.Fatalf("ConnCount(%d), want 1", n)
	}
	if _, err := c.SaveDest("D", "P", "E", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindDest("D"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-conns; n != 0 {
		t.Fatalf("ConnCount(%d), want 0", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"busy", "idle", "busy", "idle"}, events); diff != "" {
		t.Errorf("Busy calls mismatch (-want +got):\n%s", diff)
	}
}

func TestServer_stats(t *testing.T) {
	ts := scachetest.NewServer(t, server.Options{})
	c := ts.Client(t)
	c.SaveDest("D", "P", "E", 2*time.Second)
	c.SaveEndp("E", "p", fdtest.PipeFD(t), 2*time.Second)
	c.FindDest("nowhere")
	res, err := c.FindDest("D")
	fd, st := res.FD, res.Status
	if err != nil || st != scache.StatusOK {
		t.Fatalf("FindDest = %d, %v", st, err)
	}
	unix.Close(fd)
	// The hit is counted once the trailing dummy is read; the next
	// round trip on the same connection comes after that.
	c.FindEndp("nowhere")
	tot := server.StatsForTest(ts.Srv)
	got := []int64{tot.DestHits, tot.DestMisses, tot.EndpHits, tot.EndpMisses}
	if diff := cmp.Diff([]int64{1, 1, 0, 1}, got); diff != "" {
		t.Errorf("hits/misses mismatch (-want +got):\n%s", diff)
	}
	if tot.PeakDests != 1 || tot.PeakEndps != 1 || tot.PeakSessions != 1 {
		t.Errorf("peaks %+v", tot)
	}
}

func mustWrite(t testing.TB, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func mustRead(t testing.TB, c net.Conn, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v (got %q, want %q)", err, got, want)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
