package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/attr"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
	"github.com/prometheus/client_golang/prometheus"
)

// TestVersion: scachectl version prints its own build first, then the
// daemon's, or says that the peer is Postfix's scache (with mail_version
// from postconf); an unreachable daemon is an error after the first line.
func TestVersion(t *testing.T) {
	own := "scachectl  " + ownBuild().String() + "\n"
	older := scachetest.NewServer(t, server.Options{StatusUpdateTime: -1, Build: scache.BuildInfo{GoVersion: "go1.0"}}).Path
	// "postconf -h mail_version" of the default instance.
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "postconf"), []byte("#!/bin/sh\necho 3.7.11\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	t.Setenv("MAIL_CONFIG", "")
	tests := []struct {
		name   string
		socket string
		code   int
		want   string // stdout, SOCKET for the socket
	}{
		{"goscache", startGoscache(t), exitOK, own + "goscache   9.9.9-1 (revision 0123456789ab, go9.9) at SOCKET\n"},
		{"goscache without a version", older, exitOK, own + "goscache   version not reported (a goscache from before 0.1.0-1) at SOCKET\n"},
		{"postfix", scachetest.NoExtensions(t), exitOK, own + "daemon     Postfix's own scache, not goscache (Postfix 3.7.11 (postconf mail_version)) at SOCKET\n"},
		{"down", filepath.Join(t.TempDir(), "none"), exitError, own},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "-socket", tt.socket, "version")
			if want := strings.ReplaceAll(tt.want, "SOCKET", tt.socket); r.code != tt.code || r.stdout != want {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q", r.code, r.stdout, r.stderr, tt.code, want)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		sock := startGoscache(t)
		var got versionView
		if err := json.Unmarshal([]byte(mustRun(t, "-socket", sock, "version", "-json")), &got); err != nil {
			t.Fatal(err)
		}
		want := versionView{Scachectl: ownBuild(), Server: "goscache", Socket: sock,
			Daemon: &buildView{Version: testBuild.Version, Revision: testBuild.Revision, GoVersion: testBuild.GoVersion}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("version -json (-want +got):\n%s", diff)
		}
	})
}

// noExtCounter is a peer without extensions, like scachetest.NoExtensions,
// that counts the extension requests it is sent and can drop its clients
// (a scache process that exits).
type noExtCounter struct {
	path  string
	asked atomic.Int32
	mu    sync.Mutex
	conns []net.Conn
}

func startNoExtCounter(t *testing.T) *noExtCounter {
	n := &noExtCounter{}
	n.path = fdtest.ServeUnix(t, func(nc net.Conn) {
		n.mu.Lock()
		n.conns = append(n.conns, nc)
		n.mu.Unlock()
		enc := attr.NewEncoder(bufio.NewWriter(nc), attr.Format0)
		dec := attr.NewDecoder(bufio.NewReader(nc), attr.Format0, attr.Limits{})
		enc.Encode(attr.List{attr.Str(scache.AttrProtocol, scache.ProtocolName)})
		for {
			l, err := dec.Decode()
			if err != nil {
				return
			}
			if req, _ := l.Get(scache.AttrReq); strings.HasPrefix(req, "goscache_") {
				n.asked.Add(1)
			}
			enc.Encode(attr.List{attr.Str(scache.AttrStatus, "1")})
		}
	})
	return n
}

// dropAll closes every client connection, as an exiting scache does.
func (n *noExtCounter) dropAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
}

// TestMetrics_postfixAskedOnce: the exporter asks a peer without
// extensions once, then reports it from the connection it keeps open;
// after that connection closes (the scache process exited) it asks again,
// once.
func TestMetrics_postfixAskedOnce(t *testing.T) {
	peer := startNoExtCounter(t)
	reg, errb := collectorRegistry(t, peer.path)
	for _, step := range []struct {
		drop  bool
		asked int32
	}{
		{false, 1}, {false, 1}, {false, 1}, {true, 2}, {false, 2},
	} {
		if step.drop {
			peer.dropAll()
		}
		text := gatherText(t, reg)
		if !strings.Contains(text, "goscache_up 1\n") || !strings.Contains(text, `goscache_server_info{extensions="false",server="postfix"} 1`) {
			t.Errorf("scrape:\n%s", text)
		}
		if got := peer.asked.Load(); got != step.asked {
			t.Errorf("after a scrape (drop %v): %d extension requests, want %d", step.drop, got, step.asked)
		}
	}
	if errb.Len() > 0 {
		t.Errorf("stderr: %s", errb)
	}
}

// TestMetrics_realPostfixScache: against Postfix's own scache, three
// scrapes leave one "unrecognized request" warning in its log, not three.
func TestMetrics_realPostfixScache(t *testing.T) {
	sock, logs := fdtest.StartPostfixScache(t, "")
	reg, errb := collectorRegistry(t, sock)
	for range 3 {
		if text := gatherText(t, reg); !strings.Contains(text, `goscache_server_info{extensions="false",server="postfix"} 1`) {
			t.Errorf("scrape:\n%s", text)
		}
	}
	// A standard request on another connection: once scache has answered
	// it, everything the scrapes sent has been read and logged.
	c, err := client.Dial(t.Context(), sock)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.FindEndp("smtp\n127.0.0.1\n25\n1\n"); err != nil || res.Status != scache.StatusFail {
		t.Fatalf("FindEndp = %d, %v", res.Status, err)
	}
	c.Close()
	if n := strings.Count(logs.String(), `warning: unrecognized request: "goscache_stats", ignored`); n != 1 {
		t.Errorf("%d unrecognized request warnings in scache's log, want 1:\n%s", n, logs)
	}
	if errb.Len() > 0 {
		t.Errorf("stderr: %s", errb)
	}
}

// TestMetrics_timeout: without -timeout the exporter waits
// defaultMetricsTimeout for the daemon, under Prometheus's default 10s
// scrape timeout; -timeout overrides it.
func TestMetrics_timeout(t *testing.T) {
	tests := []struct {
		args []string
		want time.Duration
	}{
		{nil, defaultMetricsTimeout},
		{[]string{"-timeout", "2s"}, 2 * time.Second},
		{[]string{"-timeout", "30s"}, 30 * time.Second},
	}
	if defaultMetricsTimeout >= 10*time.Second {
		t.Fatalf("defaultMetricsTimeout %v is not under Prometheus's default scrape_timeout (10s)", defaultMetricsTimeout)
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var got time.Duration
			metricsTimeout = func(e *env) { got = e.timeout }
			defer func() { metricsTimeout = nil }()
			// An address that cannot be listened on ends the command
			// right after the timeout is chosen.
			runCLI(t, append(append([]string{"-socket", "/nonexistent"}, tt.args...), "metrics", "-listen", "256.0.0.1:1")...)
			if got != tt.want {
				t.Errorf("timeout %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMetrics_followsInstance: without -socket, the exporter looks the
// instance's socket up on every scrape, so that switching the second way
// (connection_cache_service_name = goscache, a new socket) reaches goscache
// although Postfix's scache still runs idle on the old socket, which the
// exporter had kept a connection to.
func TestMetrics_followsInstance(t *testing.T) {
	postfixPeer, goscachePeer := startNoExtCounter(t), startGoscache(t)
	queue := t.TempDir()
	if err := os.Mkdir(filepath.Join(queue, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"scache": postfixPeer.path, "goscache": goscachePeer} {
		if err := os.Symlink(target, filepath.Join(queue, "private", name)); err != nil {
			t.Fatal(err)
		}
	}
	// postconf answers with the service name in a file: main.cf's
	// connection_cache_service_name, as postconf -e changes it.
	bin := t.TempDir()
	service := filepath.Join(t.TempDir(), "service")
	script := "#!/bin/sh\necho " + queue + "\nread s <" + service + "\necho \"$s\"\n" // PATH holds only postconf
	if err := os.WriteFile(filepath.Join(bin, "postconf"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	t.Setenv("MAIL_CONFIG", "")
	setService := func(name string) {
		if err := os.WriteFile(service, []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setService("scache")
	inst := pickInstance("", os.LookupEnv)
	sock, err := inst.socket(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	e := &env{ctx: t.Context(), stdout: io.Discard, stderr: &errb, socket: sock, inst: inst, socketFromInstance: true,
		timeout: 5 * time.Second, dial: dialScache}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(e))
	for i, step := range []struct {
		service, server string
	}{
		{"scache", "postfix"}, {"scache", "postfix"}, {"goscache", "goscache"}, {"scache", "postfix"},
	} {
		setService(step.service)
		if text := gatherText(t, reg); !strings.Contains(text, `server="`+step.server+`"`) {
			t.Errorf("scrape %d (service %s): want server %q:\n%s", i, step.service, step.server, text)
		}
	}
	// Postfix's scache was asked once, then again after the switch back.
	if got := postfixPeer.asked.Load(); got != 2 {
		t.Errorf("%d extension requests to Postfix's scache, want 2", got)
	}
	if !strings.Contains(errb.String(), "the cache socket is now "+filepath.Join(queue, "private", "goscache")) {
		t.Errorf("stderr: %q", errb.String())
	}
}
