package server_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/cache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
)

// The exhaustion tests run the server in a child process whose
// RLIMIT_NOFILE the child lowers itself; the test process stays the
// client, with its own limit.
const envFDLimitChild = "GOSCACHE_TEST_FDLIMIT_CHILD" // "SOCKET NOFILE MAXSESSIONS"

func TestFDLimitChildHelper(t *testing.T) {
	spec := strings.Fields(os.Getenv(envFDLimitChild))
	if len(spec) != 3 {
		t.Skip("helper process for the descriptor exhaustion tests")
	}
	nofile, _ := strconv.ParseUint(spec[1], 10, 64)
	maxSessions, _ := strconv.Atoi(spec[2])
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: nofile, Max: nofile}); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(1)
	}
	l, err := net.Listen("unix", spec[0])
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	srv := server.New(server.Options{
		Logger:           slog.New(slog.NewTextHandler(os.Stderr, nil)),
		TTLLimit:         time.Hour, // nothing expires while the test runs
		StatusUpdateTime: -1,
		MaxSessions:      maxSessions,
	})
	conns, sessions := srv.Limits()
	go srv.Serve(l)
	fmt.Println("ready", conns, sessions)
	io.Copy(io.Discard, os.Stdin) // until the test closes our stdin
	srv.Close()
	os.Exit(0)
}

type fdLimitChild struct {
	sock            string
	conns, sessions int
	stdin           io.WriteCloser
	stderr          *fdtest.SyncBuffer
	cmd             *exec.Cmd
	stopped         bool
}

func startFDLimitChild(t *testing.T, nofile, maxSessions int) *fdLimitChild {
	t.Helper()
	ch := &fdLimitChild{sock: filepath.Join(t.TempDir(), "scache"), stderr: new(fdtest.SyncBuffer)}
	ch.cmd = exec.Command(os.Args[0], "-test.run=^TestFDLimitChildHelper$")
	ch.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", envFDLimitChild, ch.sock, nofile, maxSessions))
	ch.cmd.Stderr = ch.stderr
	stdout, err := ch.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if ch.stdin, err = ch.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.stop(t) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if _, serr := fmt.Sscanf(line, "ready %d %d", &ch.conns, &ch.sessions); err != nil || serr != nil {
		t.Fatalf("child: %q, %v\n%s", line, err, ch.stderr.String())
	}
	return ch
}

// stop ends the child and returns its log.
func (ch *fdLimitChild) stop(t *testing.T) string {
	if !ch.stopped {
		ch.stopped = true
		ch.stdin.Close()
		if err := ch.cmd.Wait(); err != nil {
			t.Errorf("child: %v\n%s", err, ch.stderr.String())
		}
	}
	return ch.stderr.String()
}

// saveSockets caches n sockets under labels e0..e(n-1), one client, and
// returns how many saves answered status 0 and the test's ends of the
// sockets, which stay open so that the cached connections stay alive.
func saveSockets(t *testing.T, c *client.Client, n int) (ok, failed int, peers []int) {
	t.Helper()
	for i := range n {
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(p[1]) })
		peers = append(peers, p[1])
		st, err := c.SaveEndp("e"+strconv.Itoa(i), "p", p[0], 3600*time.Second)
		unix.Close(p[0])
		switch {
		case err != nil:
			t.Fatalf("save %d: %v", i, err)
		case st == scache.StatusOK:
			ok++
		default:
			failed++
		}
	}
	return ok, failed, peers
}

// TestServer_descriptorHeadroom is the exhaustion run of the issue report
// scaled down: more saves than the server's descriptor limit. With the
// default budget every save succeeds, the oldest sessions are evicted as
// limit evictions, nothing runs out of descriptors, and a new client
// connects and finds the newest cached connection.
func TestServer_descriptorHeadroom(t *testing.T) {
	const nofile, saves = 256, 400
	ch := startFDLimitChild(t, nofile, 0)
	wantConns, wantSessions := cache.DescriptorBudget(nofile)
	if ch.conns != wantConns || ch.sessions != wantSessions {
		t.Fatalf("child limits %d clients, %d sessions; want %d, %d", ch.conns, ch.sessions, wantConns, wantSessions)
	}
	c, err := client.Dial(t.Context(), ch.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ok, failed, peers := saveSockets(t, c, saves)
	if ok != saves || failed != 0 {
		t.Errorf("%d saves: %d ok, %d failed; want all ok", saves, ok, failed)
	}
	st, err := c.ServerStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size.Sessions != wantSessions || st.Evictions.Limit != int64(saves-wantSessions) {
		t.Errorf("sessions %d, limit evictions %d; want %d, %d", st.Size.Sessions, st.Evictions.Limit, wantSessions, saves-wantSessions)
	}

	// As many new clients as the budget allows connect at once; the last
	// one finds the newest connection (and it is the right one), not the
	// evicted oldest.
	var clients []*client.Client
	for range wantConns - 1 { // the saving client holds one slot
		nc, err := client.Dial(t.Context(), ch.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		clients = append(clients, nc)
	}
	last := clients[len(clients)-1]
	if res, err := last.FindEndp("e0"); err != nil || res.Status != scache.StatusFail {
		t.Errorf("FindEndp(oldest) = %d, %v; want a miss (evicted)", res.Status, err)
	}
	res, err := last.FindEndp("e" + strconv.Itoa(saves-1))
	fd, status := res.FD, res.Status
	if err != nil || status != scache.StatusOK {
		t.Fatalf("FindEndp(newest) = %d, %v; want a hit", status, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if n, err := unix.Read(peers[saves-1], buf); err != nil || string(buf[:n]) != "ping" {
		t.Errorf("the connection handed out is not the one cached: read %q, %v", buf[:n], err)
	}
	c.Close()
	for _, nc := range clients {
		nc.Close()
	}
	log := ch.stop(t)
	for _, bad := range []string{"Too many open files", "more than one descriptor", "accept connection"} {
		if strings.Contains(log, bad) {
			t.Errorf("server log has %q:\n%s", bad, log)
		}
	}
}

// TestServer_descriptorExhaustion runs out of descriptors on purpose (no
// session limit): the saves that cannot be received fail with status 2,
// as before, and the log says what happened.
func TestServer_descriptorExhaustion(t *testing.T) {
	const nofile, saves = 64, 100
	ch := startFDLimitChild(t, nofile, -1)
	c, err := client.Dial(t.Context(), ch.sock)
	if err != nil {
		t.Fatal(err)
	}
	ok, failed, _ := saveSockets(t, c, saves)
	if ok+failed != saves || failed == 0 || ok == 0 {
		t.Errorf("%d saves: %d ok, %d failed; want some of each", saves, ok, failed)
	}
	c.Close()
	log := ch.stop(t)
	if n := strings.Count(log, "scache_save_endp_service: unable to receive file descriptor: Too many open files"); n != failed {
		t.Errorf("%d failed saves, %d logged as out of descriptors:\n%s", failed, n, log)
	}
	if strings.Contains(log, "more than one descriptor") {
		t.Errorf("exhaustion logged as too many descriptors:\n%s", log)
	}
}

// TestServer_maxConns: beyond MaxConns a new client waits in the backlog,
// unaccepted, and is served as soon as a served client leaves; stalled
// clients still leave after IPCTimeout.
func TestServer_maxConns(t *testing.T) {
	full := make(chan struct{}, 8)
	srv := server.New(server.Options{MaxConns: 2})
	server.SetOnFull(srv, func() { full <- struct{}{} })
	ts := scachetest.Serve(t, srv)
	a := ts.Raw(t)
	ts.Raw(t)
	<-full // both slots taken: Serve waits before accepting again
	if got, _ := srv.Limits(); got != 2 {
		t.Fatalf("Limits() clients = %d, want 2", got)
	}
	third, err := net.Dial("unix", ts.Path) // lands in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if n := server.ConnCountForTest(srv); n != 2 {
		t.Errorf("%d connections accepted while full, want 2", n)
	}
	a.Close()
	mustRead(t, third, scachetest.Announcement)
}

func TestServer_maxConnsStalled(t *testing.T) {
	srv := server.New(server.Options{MaxConns: 1, IPCTimeout: 50 * time.Millisecond})
	ts := scachetest.Serve(t, srv)
	stalled := ts.Raw(t)
	mustWrite(t, stalled, "request\x00find_") // half a request, then nothing
	second, err := net.Dial("unix", ts.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// Served once the stalled client is closed by the timeout.
	mustRead(t, second, scachetest.Announcement)
	stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stalled); err != nil {
		t.Errorf("stalled client: %v, want closed by the server", err)
	}
}

// TestServer_Limits: Limits reports the limits in force, the session limit
// being the cache's whoever made the cache, and 0 meaning the share of
// RLIMIT_NOFILE in server.Options as in cache.Options.
func TestServer_Limits(t *testing.T) {
	conns, sessions := cache.DescriptorBudget(cache.NoFileLimit())
	own := cache.New(cache.Options{MaxSessions: 5})
	defer own.Close()
	tests := []struct {
		name                  string
		opts                  server.Options
		wantConns, wantSesses int
	}{
		{"defaults", server.Options{}, conns, sessions},
		{"no limits", server.Options{MaxConns: -1, MaxSessions: -1}, -1, -1},
		{"set", server.Options{MaxConns: 3, MaxSessions: 7}, 3, 7},
		{"the caller's cache", server.Options{Cache: own}, conns, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := server.New(tt.opts)
			defer srv.Close()
			if c, s := srv.Limits(); c != tt.wantConns || s != tt.wantSesses {
				t.Errorf("Limits() = %d, %d; want %d, %d", c, s, tt.wantConns, tt.wantSesses)
			}
		})
	}
	if got := cache.New(cache.Options{}).MaxSessions(); got != sessions {
		t.Errorf("cache.New(Options{}).MaxSessions() = %d, want %d", got, sessions)
	}
}

// TestNew_cacheWithCacheOptions: options of a cache the Server would
// create, given with a cache of the caller's, would not be in force: New
// panics instead of ignoring them.
func TestNew_cacheWithCacheOptions(t *testing.T) {
	c := cache.New(cache.Options{})
	defer c.Close()
	for _, o := range []server.Options{{Cache: c, MaxSessions: 3}, {Cache: c, KeepDead: true}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", o)
				}
			}()
			server.New(o)
		}()
	}
}
