package server_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"

	"log/slog"
)

// The peer tests start the test binary again as another user; that child
// connects to the socket named in envPeerChild and prints what it saw.
const envPeerChild = "GOSCACHE_TEST_PEER_CHILD"

func TestPeerChildHelper(t *testing.T) {
	path := os.Getenv(envPeerChild)
	if path == "" {
		t.Skip("helper process for the peer credential tests")
	}
	os.Stdout.WriteString(fdtest.ProbeAnnouncement(path, scachetest.Announcement) + "\n")
	os.Exit(0)
}

// peerTestServer starts srv on a socket that every user may reach through
// the file system (mode 0666 in 0755 directories), so that only the peer
// check decides, and copies the test binary where every user can run it.
func peerTestServer(t *testing.T, srv *server.Server) (sock, exe string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a client as another user")
	}
	ts := scachetest.Serve(t, srv)
	exe = fdtest.CopyTestBinary(t, filepath.Dir(ts.Path), "scache.test")
	if err := os.Chmod(ts.Path, 0o666); err != nil {
		t.Fatal(err)
	}
	return ts.Path, exe
}

// runPeerChild runs the helper as uid/gid with the supplementary groups
// given and returns what it printed.
func runPeerChild(t *testing.T, exe, sock string, uid, gid uint32, groups ...uint32) string {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestPeerChildHelper$")
	cmd.Env = append(os.Environ(), envPeerChild+"="+sock)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestServer_peerRefused is the attack of the issue report: a process of
// another user connects. It must get nothing, not even the announcement;
// the refusal is counted each time and logged once per interval.
func TestServer_peerRefused(t *testing.T) {
	logs := new(fdtest.SyncBuffer)
	srv := server.New(server.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Peers: &server.PeerPolicy{LogInterval: time.Hour}})
	sock, exe := peerTestServer(t, srv)
	for i := 1; i <= 2; i++ {
		if got := runPeerChild(t, exe, sock, 65534, 65534); got != "closed" {
			t.Fatalf("client %d as uid 65534: %s, want closed", i, got)
		}
		if got := server.RefusedForTest(srv); got != int64(i) {
			t.Errorf("Refused() = %d after %d refusals", got, i)
		}
	}
	if n := strings.Count(logs.String(), "refusing connection from uid 65534"); n != 1 {
		t.Errorf("refusal logged %d times, want once per interval:\n%s", n, logs.String())
	}
	// Root (this process) is still served.
	c, err := client.Dial(t.Context(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res, err := c.FindEndp("x"); err != nil || res.Status != scache.StatusFail {
		t.Fatalf("FindEndp as root = %d, %v; want a miss", res.Status, err)
	}
	st, err := c.ServerStats()
	if err != nil || st.Refused != 2 {
		t.Fatalf("ServerStats().Refused = %v (err %v), want 2", st, err)
	}
}

// TestServer_peerAllowed: the same user is admitted when the policy names
// it, or one of its groups, primary or supplementary.
func TestServer_peerAllowed(t *testing.T) {
	tests := []struct {
		name   string
		policy server.PeerPolicy
		groups []uint32
		want   string
	}{
		{"no policy entry", server.PeerPolicy{}, nil, "closed"},
		{"uid listed", server.PeerPolicy{UIDs: []int{65534}}, nil, "announced"},
		{"primary group listed", server.PeerPolicy{GIDs: []int{65534}}, nil, "announced"},
		{"supplementary group listed", server.PeerPolicy{GIDs: []int{4242}}, []uint32{4242}, "announced"},
		{"other group listed", server.PeerPolicy{GIDs: []int{4242}}, []uint32{4343}, "closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			sock, exe := peerTestServer(t, server.New(server.Options{Peers: &p}))
			if got := runPeerChild(t, exe, sock, 65534, 65534, tt.groups...); got != tt.want {
				t.Errorf("client as uid 65534 groups %v: %s, want %s", tt.groups, got, tt.want)
			}
		})
	}
}

// TestServer_noPeerPolicy: a Server without a policy serves anyone, as
// before (library users decide).
func TestServer_noPeerPolicy(t *testing.T) {
	sock, exe := peerTestServer(t, server.New(server.Options{}))
	if got := runPeerChild(t, exe, sock, 65534, 65534); got != "announced" {
		t.Errorf("client as uid 65534 without a policy: %s, want announced", got)
	}
}

// TestServer_notUnix: a connection that is not a Unix-domain socket (TCP
// here), which can neither pass descriptors nor say who is at the other
// end, is refused unanswered and counted, with or without a peer policy.
func TestServer_notUnix(t *testing.T) {
	for _, peers := range []*server.PeerPolicy{nil, {}} {
		t.Run(fmt.Sprintf("policy=%v", peers != nil), func(t *testing.T) { testNotUnix(t, peers) })
	}
}

func testNotUnix(t *testing.T, peers *server.PeerPolicy) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := new(fdtest.SyncBuffer)
	srv := server.New(server.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Peers: peers})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() {
		srv.Close()
		<-done
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := nc.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
		t.Fatalf("read %d bytes, %v; want EOF before any byte", n, err)
	}
	if got := server.RefusedForTest(srv); got != 1 {
		t.Errorf("Refused() = %d, want 1", got)
	}
	if !strings.Contains(logs.String(), "refusing connection: *net.TCPConn: not a Unix-domain socket") {
		t.Errorf("refusal not logged:\n%s", logs.String())
	}
}
