package scache

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
func dialServer(tb testing.TB, path string) *Client {
	tb.Helper()
	c, err := Dial(tb.Context(), path)
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
	build := BuildInfo{Version: "1.2.3-1", Revision: "0123456789abcdef"}
	srv := NewServer(nil, Options{TTLLimit: time.Hour, Build: build})
	path := startServer(t, srv)
	peer := fdtest.NewTCPPeer(t)
	c := dialServer(t, path)
	if st, err := c.SaveDest(60*time.Second, destA, propD, endpA); err != nil || st != StatusOK {
		t.Fatalf("SaveDest = %d, %v", st, err)
	}
	for i := 0; i < 2; i++ {
		if st, err := c.SaveEndp(60*time.Second, endpA, propE, peer.Dial(t)); err != nil || st != StatusOK {
			t.Fatalf("SaveEndp = %d, %v", st, err)
		}
	}
	fd, _, _, st, err := c.FindDest(destA)
	if err != nil || st != StatusOK {
		t.Fatalf("FindDest = %d, %v", st, err)
	}
	unix.Close(fd)
	if _, _, st, err := c.FindEndp(endpB); err != nil || st != StatusFail {
		t.Fatalf("FindEndp(miss) = %d, %v", st, err)
	}
	dialServer(t, path) // a second client

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
		if n != h.Count || len(h.Buckets) != len(LatencyBounds)+1 || (h.Count > 0) != (h.Sum > 0) {
			t.Errorf("%s: count %d, sum %v, buckets %v", RequestKinds[k], h.Count, h.Sum, h.Buckets)
		}
		got.Latency.Requests[k] = Histogram{Count: h.Count}
	}
	want := &ServerStats{
		Time:          got.Time,
		Totals:        Totals{Start: got.Totals.Start, DestHits: 1, EndpMisses: 1, PeakDests: 1, PeakEndps: 1, PeakSessions: 2},
		Size:          Size{Dests: 1, Endps: 1, Sessions: 1},
		Evictions:     Evictions{},
		Clients:       2,
		LatencyBounds: LatencyBounds[:],
		// find_dest, find_endp, save_dest, save_endp, goscache_stats, goscache_dump
		Latency: Latency{Requests: [len(RequestKinds)]Histogram{{Count: 1}, {Count: 1}, {Count: 1}, {Count: 2}, {}, {}}},
		Build:   BuildInfo{Version: build.Version, Revision: build.Revision, GoVersion: runtime.Version()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ServerStats mismatch (-want +got):\n%s", diff)
	}
	if got.Time.Before(got.Totals.Start) || time.Since(got.Time) > time.Hour {
		t.Errorf("times: start %v, now %v", got.Totals.Start, got.Time)
	}
}

func TestExtDump(t *testing.T) {
	srv := NewServer(nil, Options{TTLLimit: time.Hour})
	path := startServer(t, srv)
	peer := fdtest.NewTCPPeer(t)
	c := dialServer(t, path)
	mustOK := func(st int, err error) {
		t.Helper()
		if err != nil || st != StatusOK {
			t.Fatalf("status %d, err %v", st, err)
		}
	}
	mustOK(c.SaveDest(60*time.Second, destA, propD, endpA))
	mustOK(c.SaveDest(30*time.Second, destA, propD+"x", endpB))
	fds := []int{peer.Dial(t), peer.Dial(t)}
	mustOK(c.SaveEndp(60*time.Second, endpA, propE, fds[0]))
	mustOK(c.SaveEndp(60*time.Second, endpA, propE+"second\n\n", fds[1]))
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
		t.Errorf("Dump snapshot mismatch (-want +got):\n%s", diff)
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
	fd, prop, st, err := c.FindEndp(endpA)
	mustOK(st, err)
	defer unix.Close(fd)
	if prop != propE || fdtest.Identity(t, fd) != fdtest.Identity(t, fds[0]) {
		t.Errorf("FindEndp after dump returned %q (fd %v), want the oldest session", prop, fdtest.Identity(t, fd))
	}
}

func TestExtDump_empty(t *testing.T) {
	path := startServer(t, NewServer(nil, Options{}))
	d, err := dialServer(t, path).Dump()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Snapshot.Dests) != 0 || len(d.Snapshot.Endps) != 0 || len(d.Peers) != 0 {
		t.Errorf("Dump of an empty cache = %+v", d)
	}
}

// TestExtRequest_extraAttribute: like Postfix's strict scans, an extra
// attribute is logged and the request still served.
func TestExtRequest_extraAttribute(t *testing.T) {
	path := startServer(t, NewServer(nil, Options{}))
	c := dialServer(t, path)
	for _, req := range []string{ReqStats, ReqDump} {
		l, err := c.Request(attr.List{attr.Str(AttrReq, req), attr.Str("extra", "1")})
		if err != nil {
			t.Fatal(err)
		}
		// The cache is empty: a dump is its header record only.
		if v, _ := l.Get(AttrStatus); v != "0" {
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
	path := startServer(t, NewServer(nil, Options{}))
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
	srv := NewServer(nil, Options{TTLLimit: time.Hour})
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
	if _, err := stalled.Write(attr.Append(nil, attr.List{attr.Str(AttrReq, ReqDump)})); err != nil {
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
	if st, err := c.SaveEndp(1*time.Second, endpA, propE, peer.Dial(t)); err != nil || st != StatusOK {
		t.Fatalf("SaveEndp while a dump is stalled = %d, %v", st, err)
	}
	fd, _, st, err := c.FindEndp(endpA)
	if err != nil || st != StatusOK {
		t.Fatalf("FindEndp while a dump is stalled = %d, %v", st, err)
	}
	unix.Close(fd)
	if _, err := c.ServerStats(); err != nil {
		t.Fatal(err)
	}
}

func TestPeerAddr(t *testing.T) {
	peer := fdtest.NewTCPPeer(t)
	if got, want := PeerAddr(peer.Dial(t)), peer.Addr(); got != want {
		t.Errorf("PeerAddr(tcp) = %q, want %q", got, want)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if got := PeerAddr(fds[0]); got != "unix" {
		t.Errorf("PeerAddr(socketpair) = %q, want unix", got)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := PeerAddr(int(f.Fd())); got != "" {
		t.Errorf("PeerAddr(file) = %q, want empty", got)
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
			c, err := NewClient(nc.(*net.UnixConn))
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

// TestServerStats_olderServer: a reply from a goscache that predates the
// optional attributes (refused_clients, non_sockets, the latency
// histograms, the build) still decodes, with those fields empty.
func TestServerStats_olderServer(t *testing.T) {
	base := attr.List{
		attr.Int(AttrStatus, StatusOK), attr.Str(AttrServer, ServerName),
		attr.Long(AttrTime, 2e18), attr.Long(AttrStart, 1e18), attr.Int(AttrClients, 3),
		attr.Long(AttrDestHits, 4), attr.Long(AttrDestMisses, 5), attr.Long(AttrEndpHits, 6), attr.Long(AttrEndpMisses, 7),
		attr.Int(AttrDests, 1), attr.Int(AttrEndps, 1), attr.Int(AttrSessions, 2),
		attr.Int(AttrPeakDests, 1), attr.Int(AttrPeakEndps, 1), attr.Int(AttrPeakSessions, 2),
		attr.Long(AttrEvictedExpired, 8), attr.Long(AttrEvictedLimit, 0), attr.Long(AttrEvictedClosed, 0),
		attr.Long(AttrExpiredBindings, 9), attr.Long(AttrEvictedDead, 1),
	}
	wantBase := ServerStats{
		Time: time.Unix(0, 2e18),
		Totals: Totals{Start: time.Unix(0, 1e18), DestHits: 4, DestMisses: 5, EndpHits: 6, EndpMisses: 7,
			PeakDests: 1, PeakEndps: 1, PeakSessions: 2},
		Size:      Size{Dests: 1, Endps: 1, Sessions: 2},
		Evictions: Evictions{Expired: 8, ExpiredBindings: 9, Dead: 1},
		Clients:   3,
	}
	withBuild := wantBase
	withBuild.Build = BuildInfo{Version: "0.1.0-1", Revision: "abc", GoVersion: "go1.26.0"}
	tests := []struct {
		name  string
		reply attr.List
		want  ServerStats
	}{
		{"first release: no build, no histograms", base, wantBase},
		{"with the build", append(append(attr.List{}, base...),
			attr.Str(AttrVersion, "0.1.0-1"), attr.Str(AttrRevision, "abc"), attr.Str(AttrGoVersion, "go1.26.0")), withBuild},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fakeServer(t, tt.reply)
			got, err := dialServer(t, path).ServerStats()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tt.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("ServerStats (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeServer serves one client on a socket in t.TempDir(): it announces
// the protocol, reads one request and answers it with reply.
func fakeServer(t *testing.T, reply attr.List) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(attr.Append(nil, attr.List{attr.Str(AttrProtocol, ProtocolName)}))
		if _, err := attr.NewDecoder(bufio.NewReader(c), attr.Format0, attr.Limits{}).Decode(); err != nil {
			return
		}
		c.Write(attr.Append(nil, reply))
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return path
}
