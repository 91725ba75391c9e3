package server

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/fdtest"
	"golang.org/x/sys/unix"
)

// startServer serves srv on a socket in tb.TempDir() and returns the
// socket path; the server is shut down when the test ends.
func startServer(tb testing.TB, srv *Server) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "scache")
	l, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return path
}

// dialServer connects a client, closed when the test ends.
func dialServer(tb testing.TB, path string) *client.Client {
	tb.Helper()
	c, err := client.Dial(tb.Context(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

const (
	destA = "smtp\nexample.com\n"
	endpA = "smtp\n127.0.0.1\n25\n1\n"
	endpB = "smtp\n127.0.0.2\n25\n1\n"
	propD = "destination=example.com\nhost_name=mx\nhost_addr=127.0.0.1\ndestination_features=0\n\n"
	propE = "tls_level=1\nreuse_count=0\nendpoint_features=0\nexpire_time=1700000300\n\n"
)

func TestExtStats(t *testing.T) {
	build := scache.BuildInfo{Version: "1.2.3-1", Revision: "0123456789abcdef"}
	srv := New(Options{TTLLimit: time.Hour, Build: build})
	path := startServer(t, srv)
	peer := fdtest.NewTCPPeer(t)
	c := dialServer(t, path)
	if st, err := c.SaveDest(destA, propD, endpA, 60*time.Second); err != nil || st != scache.StatusOK {
		t.Fatalf("SaveDest = %d, %v", st, err)
	}
	for i := 0; i < 2; i++ {
		if st, err := c.SaveEndp(endpA, propE, peer.Dial(t), 60*time.Second); err != nil || st != scache.StatusOK {
			t.Fatalf("SaveEndp = %d, %v", st, err)
		}
	}
	res, err := c.FindDest(destA)
	fd, st := res.FD, res.Status
	if err != nil || st != scache.StatusOK {
		t.Fatalf("FindDest = %d, %v", st, err)
	}
	unix.Close(fd)
	if res, err := c.FindEndp(endpB); err != nil || res.Status != scache.StatusFail {
		t.Fatalf("FindEndp(miss) = %d, %v", res.Status, err)
	}
	// A second client, which the server has surely accepted once it has
	// answered it (Dial does not wait for the announcement).
	if res, err := dialServer(t, path).FindEndp(endpB); err != nil || res.Status != scache.StatusFail {
		t.Fatalf("second client's FindEndp = %d, %v", res.Status, err)
	}
	// Its latency is recorded after its reply, on that client's goroutine,
	// which may not have got there when c's request below is served: wait
	// until it has (c's own requests are recorded before c's next one is
	// read).
	for srv.latency.snapshot().Requests[scache.RequestKind(scache.ReqFindEndp)].Count < 2 {
		time.Sleep(time.Millisecond)
	}

	got, err := c.ServerStats()
	if err != nil {
		t.Fatal(err)
	}
	// Durations vary: check that the buckets add up to the count, then
	// compare the counts only. The goscache_stats request being answered
	// is recorded after its reply.
	for k, h := range got.Latency.Requests {
		var n uint64
		for _, b := range h.Buckets {
			n += b
		}
		if n != h.Count || len(h.Buckets) != len(scache.LatencyBounds())+1 || (h.Count > 0) != (h.Sum > 0) {
			t.Errorf("%s: count %d, sum %v, buckets %v", scache.RequestKinds()[k], h.Count, h.Sum, h.Buckets)
		}
		got.Latency.Requests[k] = scache.Histogram{Count: h.Count}
	}
	want := &scache.ServerStats{
		Time:          got.Time,
		Totals:        scache.Totals{Start: got.Totals.Start, DestHits: 1, EndpMisses: 2, PeakDests: 1, PeakEndps: 1, PeakSessions: 2},
		Size:          cache.Size{Dests: 1, Endps: 1, Sessions: 1},
		Evictions:     cache.Evictions{},
		Clients:       2,
		LatencyBounds: scache.LatencyBounds(),
		// find_dest, find_endp, save_dest, save_endp, goscache_stats, goscache_dump
		Latency: scache.Latency{Requests: [scache.NumRequestKinds]scache.Histogram{{Count: 1}, {Count: 2}, {Count: 1}, {Count: 2}, {}, {}}},
		Build:   scache.BuildInfo{Version: build.Version, Revision: build.Revision, GoVersion: runtime.Version()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scache.ServerStats mismatch (-want +got):\n%s", diff)
	}
	if got.Time.Before(got.Totals.Start) || time.Since(got.Time) > time.Hour {
		t.Errorf("times: start %v, now %v", got.Totals.Start, got.Time)
	}
}

func TestExtDump(t *testing.T) {
	srv := New(Options{TTLLimit: time.Hour})
	path := startServer(t, srv)
	peer := fdtest.NewTCPPeer(t)
	c := dialServer(t, path)
	mustOK := func(st scache.Status, err error) {
		t.Helper()
		if err != nil || st != scache.StatusOK {
			t.Fatalf("status %d, err %v", st, err)
		}
	}
	mustOK(c.SaveDest(destA, propD, endpA, 60*time.Second))
	mustOK(c.SaveDest(destA, propD+"x", endpB, 30*time.Second))
	fds := []int{peer.Dial(t), peer.Dial(t)}
	mustOK(c.SaveEndp(endpA, propE, fds[0], 60*time.Second))
	mustOK(c.SaveEndp(endpA, propE+"second\n\n", fds[1], 60*time.Second))
	flags, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Cache().Snapshot()

	d, err := c.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, d.Snapshot, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("scache.Dump snapshot mismatch (-want +got):\n%s", diff)
	}
	for _, s := range d.Snapshot.Endps[0].Sessions {
		if got, want := d.Peers[s.FD], peer.Addr(); got != want {
			t.Errorf("peer of fd %d = %q, want %q", s.FD, got, want)
		}
	}
	if d.Time.IsZero() {
		t.Error("dump time is zero")
	}

	// The dump changed nothing: same contents, same descriptor flags, and
	// the oldest session still comes back first.
	if diff := cmp.Diff(before, srv.Cache().Snapshot(), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("cache changed by the dump (-before +after):\n%s", diff)
	}
	if got, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFL, 0); err != nil || got != flags {
		t.Errorf("descriptor flags after dump = %#x, %v; want %#x", got, err, flags)
	}
	res, err := c.FindEndp(endpA)
	fd, prop, st := res.FD, res.EndpProp, res.Status
	mustOK(st, err)
	defer unix.Close(fd)
	if prop != propE || fdtest.Identity(t, fd) != fdtest.Identity(t, fds[0]) {
		t.Errorf("FindEndp after dump returned %q (fd %v), want the oldest session", prop, fdtest.Identity(t, fd))
	}
}

func TestExtDump_empty(t *testing.T) {
	path := startServer(t, New(Options{}))
	d, err := dialServer(t, path).Dump()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Snapshot.Dests) != 0 || len(d.Snapshot.Endps) != 0 || len(d.Peers) != 0 {
		t.Errorf("scache.Dump of an empty cache = %+v", d)
	}
}

// TestExtRequest_extraAttribute: like Postfix's strict scans, an extra
// attribute is logged and the request still served.
func TestExtRequest_extraAttribute(t *testing.T) {
	path := startServer(t, New(Options{}))
	c := dialServer(t, path)
	for _, req := range []string{scache.ReqStats, scache.ReqDump} {
		l, err := c.Request(attr.List{attr.Str(scache.AttrReq, req), attr.Str("extra", "1")})
		if err != nil {
			t.Fatal(err)
		}
		// The cache is empty: a dump is its header record only.
		if v, _ := l.Get(scache.AttrStatus); v != "0" {
			t.Errorf("%s with an extra attribute: reply %v", req, l)
		}
	}
	// The connection is still in step.
	if _, err := c.ServerStats(); err != nil {
		t.Fatal(err)
	}
}

// TestExtRequest_truncated: a client that leaves in the middle of an
// extension request gets status=1 (if anything) and the server goes on.
func TestExtRequest_truncated(t *testing.T) {
	path := startServer(t, New(Options{}))
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("request\x00goscache_dump\x00ext")) // cut inside a name
	nc.(*net.UnixConn).CloseWrite()
	br := bufio.NewReader(nc)
	dec := attr.NewDecoder(br, attr.Format0, attr.Limits{})
	if _, err := dec.Decode(); err != nil { // announcement
		t.Fatal(err)
	}
	l, err := dec.Decode()
	if err != nil || len(l) != 1 || l[0].Value != "1" {
		t.Errorf("reply to a truncated request = %v, %v; want status=1", l, err)
	}
	nc.Close()
	if _, err := dialServer(t, path).ServerStats(); err != nil {
		t.Fatal(err)
	}
}

// TestExtDump_slowReaderDoesNotBlock: a client that asks for a dump larger
// than the socket buffers and does not read it stalls only itself.
func TestExtDump_slowReaderDoesNotBlock(t *testing.T) {
	srv := New(Options{TTLLimit: time.Hour})
	path := startServer(t, srv)
	big := strings.Repeat("p", 4096)
	for i := 0; i < 2000; i++ {
		srv.Cache().SaveDest(destA, big+string(rune('a'+i%26))+strings.Repeat("x", i), endpA, time.Hour)
	}
	stalled, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := stalled.Write(attr.Append(nil, attr.List{attr.Str(scache.AttrReq, scache.ReqDump)})); err != nil {
		t.Fatal(err)
	}
	// The dump (about 12 MB) is far larger than the socket buffers: once
	// its first byte arrives the server is writing it, and it soon blocks.
	buf := make([]byte, 1)
	if _, err := stalled.Read(buf); err != nil {
		t.Fatal(err)
	}
	c := dialServer(t, path)
	peer := fdtest.NewTCPPeer(t)
	if st, err := c.SaveEndp(endpA, propE, peer.Dial(t), 1*time.Second); err != nil || st != scache.StatusOK {
		t.Fatalf("SaveEndp while a dump is stalled = %d, %v", st, err)
	}
	res, err := c.FindEndp(endpA)
	fd, st := res.FD, res.Status
	if err != nil || st != scache.StatusOK {
		t.Fatalf("FindEndp while a dump is stalled = %d, %v", st, err)
	}
	unix.Close(fd)
	if _, err := c.ServerStats(); err != nil {
		t.Fatal(err)
	}
}

func TestPeerAddr(t *testing.T) {
	peer := fdtest.NewTCPPeer(t)
	if got, want := scache.PeerAddr(peer.Dial(t)), peer.Addr(); got != want {
		t.Errorf("scache.PeerAddr(tcp) = %q, want %q", got, want)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if got := scache.PeerAddr(fds[0]); got != "unix" {
		t.Errorf("scache.PeerAddr(socketpair) = %q, want unix", got)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := scache.PeerAddr(int(f.Fd())); got != "" {
		t.Errorf("scache.PeerAddr(file) = %q, want empty", got)
	}
}

// FuzzExtReply feeds arbitrary bytes to the client side of the extension
// requests: it must return a result or an error, never panic or hang.
func FuzzExtReply(f *testing.F) {
	f.Add([]byte("status\x001\x00\x00"))
	f.Add([]byte("status\x000\x00server\x00goscache\x00time\x001\x00bindings\x001\x00sessions\x001\x00\x00" +
		"destination\x00d\x00endpoint\x00e\x00property\x00p\x00created\x001\x00expires\x002\x00\x00" +
		"endpoint\x00e\x00fd\x007\x00property\x00p\x00created\x001\x00expires\x002\x00peer\x00\x00\x00"))
	f.Add([]byte("status\x000\x00server\x00goscache\x00time\x001\x00start\x001\x00clients\x001\x00\x00"))
	f.Add([]byte("status\x000\x00server\x00goscache\x00time\x001\x00start\x001\x00clients\x001\x00" +
		"latency_bounds\x0010,20\x00latency_find_dest\x003,60,1,1,1\x00latency_save_endp\x001,2\x00\x00"))
	f.Add([]byte("status\x000\x00server\x00goscache\x00bindings\x0099999999\x00sessions\x00-1\x00time\x00x\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dump := range []bool{false, true} {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			srvEnd := os.NewFile(uintptr(fds[0]), "server")
			cliFile := os.NewFile(uintptr(fds[1]), "client")
			nc, err := net.FileConn(cliFile)
			cliFile.Close()
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				srvEnd.Write(attr.Append(nil, announcement))
				srvEnd.Write(data)
				srvEnd.Close()
			}()
			c, err := client.New(nc.(*net.UnixConn))
			if err != nil {
				nc.Close()
				t.Fatal(err)
			}
			if dump {
				c.Dump()
			} else {
				c.ServerStats()
			}
			c.Close()
		}
	})
}
