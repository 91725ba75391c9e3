package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goscache/goscache/cmd/internal/buildinfo"
	"github.com/goscache/goscache/mastercompat"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/fdtest"
)

func TestMasterArgv(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	tests := []struct {
		name string
		args []string
		env  func(string) (string, bool)
		want bool
	}{
		{"debian entry", []string{"-l", "-t", "unix", "-u", "-c"}, noEnv, true},
		{"renamed binary", []string{"-l", "-n", "scache", "-t", "unix", "-u", "-c"}, noEnv, true},
		{"clustered", []string{"-lt", "unix"}, noEnv, true},
		{"attached transport", []string{"-tunix"}, noEnv, true},
		{"generation only", nil, func(k string) (string, bool) { return "1", k == "GENERATION" }, true},
		{"standalone", []string{"-listen", "unix:/tmp/s", "-ttl-limit", "2s", "-v"}, noEnv, false},
		{"standalone ttl=", []string{"-listen=unix:/tmp/s", "-ttl-limit=2s", "-log", "/tmp/l"}, noEnv, false},
		{"standalone announce", []string{"-listen", "unix:/tmp/s", "-announce=false"}, noEnv, false},
		{"no args", nil, noEnv, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := masterArgv(tt.args, tt.env); got != tt.want {
				t.Errorf("masterArgv(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseStandalone_errors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no listen", nil, "-listen is required"},
		{"short ttl limit", []string{"-listen", "unix:/x", "-ttl-limit", "500ms"}, "at least 1s"},
		{"bad status time", []string{"-listen", "unix:/x", "-status-update-time", "0s"}, "at least 1s"},
		{"bad ipc timeout", []string{"-listen", "unix:/x", "-ipc-timeout", "-1s"}, "must be positive"},
		{"negative max", []string{"-listen", "unix:/x", "-max-sessions", "-2"}, "must be -1 (no limit) or more"},
		{"negative clients", []string{"-listen", "unix:/x", "-max-clients", "-5"}, "must be -1 (no limit) or more"},
		{"extra arg", []string{"-listen", "unix:/x", "junk"}, "unexpected argument: junk"},
		{"unknown flag", []string{"-frob"}, "flag provided but not defined"},
		{"mode not octal", []string{"-listen", "unix:/x", "-socket-mode", "0689"}, "want octal permissions"},
		{"mode too wide", []string{"-listen", "unix:/x", "-socket-mode", "01777"}, "want octal permissions"},
		{"unknown group", []string{"-listen", "unix:/x", "-allow-group", "no-such-group-goscache"}, "-allow-group no-such-group-goscache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseStandalone(append([]string{"goscache"}, tt.args...), &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseStandalone_socket(t *testing.T) {
	tests := []struct {
		name string
		args []string
		mode os.FileMode
		gid  int
	}{
		{"default", nil, 0o600, -1},
		{"wider mode", []string{"-socket-mode", "0666"}, 0o666, -1},
		{"group widens the default", []string{"-allow-group", "4242"}, 0o660, 4242},
		{"group and explicit mode", []string{"-allow-group", "4242", "-socket-mode", "0640"}, 0o640, 4242},
		{"group by name", []string{"-allow-group", "root"}, 0o660, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseStandalone(append([]string{"goscache", "-listen", "unix:/x"}, tt.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.socketMode != tt.mode || cfg.allowGID != tt.gid {
				t.Errorf("mode %v gid %d, want %v %d", cfg.socketMode, cfg.allowGID, tt.mode, tt.gid)
			}
		})
	}
}

// TestListen_mode checks the socket file's permissions and group as
// created, before anyone could connect.
func TestListen_mode(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
		gid  int
	}{
		{"owner only", 0o600, -1},
		{"group", 0o660, 4242},
		{"everyone", 0o666, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.gid >= 0 && os.Geteuid() != 0 {
				t.Skip("chown to another group needs root")
			}
			path := filepath.Join(t.TempDir(), "sock")
			l, err := listen("unix:"+path, tt.mode, tt.gid)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != tt.mode {
				t.Errorf("socket mode %v, want %v", perm, tt.mode)
			}
			if gid := int(fi.Sys().(*syscall.Stat_t).Gid); tt.gid >= 0 && gid != tt.gid {
				t.Errorf("socket group %d, want %d", gid, tt.gid)
			}
		})
	}
}

func TestListen_badAddress(t *testing.T) {
	for _, addr := range []string{"/tmp/x", "tcp:127.0.0.1:1", "unix:"} {
		if l, err := listen(addr, 0o600, -1); err == nil {
			l.Close()
			t.Errorf("listen(%q) succeeded", addr)
		}
	}
}

func TestListen_notASocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := listen("unix:"+path, 0o600, -1); err == nil {
		l.Close()
		t.Fatal("listen over a regular file succeeded")
	}
}

func TestListen_liveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sock")
	l, err := listen("unix:"+path, 0o600, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l2, err := listen("unix:"+path, 0o600, -1); err == nil {
		l2.Close()
		t.Fatal("second listen on a live socket succeeded")
	}
}

// TestRun_standalone starts the daemon over a stale socket file, runs a
// miss through it, stops it through ctx and checks its log.
// TestRun_standalone runs the daemon standalone, announcing its protocol
// (the default) and speaking Postfix 3.5's protocol (-announce=false).
func TestRun_standalone(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    []string
		announce bool
	}{
		{"default", nil, true},
		{"announce=false", []string{"-announce=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { testRunStandalone(t, tc.flags, tc.announce) })
	}
}

func testRunStandalone(t *testing.T, flags []string, announce bool) {
	path := filepath.Join(t.TempDir(), "scache")
	// A stale socket: bound, then its listener gone without unlinking.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr fdtest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"goscache", "-listen", "unix:" + path, "-v"}, flags...), &stdout, &stderr)
	}()

	var c *client.Client
	for i := 0; ; i++ {
		c, err = client.Dial(t.Context(), path)
		if err == nil {
			break
		}
		if i == 500 {
			t.Fatalf("daemon did not come up: %v\n%s", err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %v, want 0600", perm)
	}
	res, err := c.FindDest("smtp\nexample.com\n")
	fd, status := res.FD, res.Status
	if err != nil || status != scache.StatusFail || fd != -1 {
		t.Fatalf("FindDest = fd %d, status %d, err %v; want a miss", fd, status, err)
	}
	if c.Announced() != announce {
		t.Errorf("Announced() = %v, want %v", c.Announced(), announce)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	log := stderr.String()
	for _, want := range []string{"listening on unix:" + path, "statistics: domain lookup hits=0 miss=1 success=0%", "stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		code       int
		wantStderr string
	}{
		{"success", nil, 0, ""},
		{"logged fatal", &mastercompat.LoggedError{Text: "dictionary mail_dict: macro processing error"}, 1, ""},
		{"wrapped logged fatal", fmt.Errorf("master: %w", &mastercompat.LoggedError{Text: "bad generation: 8x"}), 1, ""},
		{"other error", errors.New("listen: address in use"), 1, "goscache: listen: address in use\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := exitCode(tt.err, &stderr); code != tt.code || stderr.String() != tt.wantStderr {
				t.Errorf("exitCode(%v) = %d, stderr %q; want %d, %q", tt.err, code, stderr.String(), tt.code, tt.wantStderr)
			}
		})
	}
}

// TestRun_infoFlags: -version prints the build on stdout, -h explains both
// ways goscache runs; neither starts a daemon.
func TestRun_infoFlags(t *testing.T) {
	tests := []struct {
		args       []string
		wantStdout []string
		wantStderr []string
	}{
		{[]string{"-version"}, []string{"goscache " + buildinfo.Get().String() + "\n"}, nil},
		{[]string{"-h"}, nil, []string{"Under master(8)", "postconf -F 'scache/unix/command = goscache'",
			"connection_cache_service_name = goscache", "-listen unix:/path/to/socket", "-version"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(t.Context(), append([]string{"goscache"}, tt.args...), &stdout, &stderr); err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, w := range tt.wantStdout {
				if stdout.String() != w {
					t.Errorf("stdout = %q, want %q", stdout.String(), w)
				}
			}
			if tt.wantStdout == nil && stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}
