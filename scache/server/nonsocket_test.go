package server_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
)

// TestServer_nonSocket: a pipe or a regular file saved as a connection is
// accepted with status 0 and handed back, exactly as Postfix's scache does,
// but counted and logged when a find meets it.
func TestServer_nonSocket(t *testing.T) {
	file := func(t testing.TB) int {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return int(f.Fd())
	}
	socket := func(t testing.TB) int {
		a, _ := fdtest.UnixPair(t)
		f, err := a.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return int(f.Fd())
	}
	tests := []struct {
		name     string
		fd       func(testing.TB) int
		keepDead bool
		want     int64
	}{
		{"pipe", fdtest.PipeFD, false, 1},
		{"regular file", file, false, 1},
		{"socket", socket, false, 0},
		{"pipe, no liveness check", fdtest.PipeFD, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := new(fdtest.SyncBuffer)
			ts := scachetest.NewServer(t, server.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), KeepDead: tt.keepDead})
			c := ts.Client(t)
			fd := tt.fd(t)
			if st, err := c.SaveEndp("e", "p", fd, 2*time.Second); err != nil || st != scache.StatusOK {
				t.Fatalf("SaveEndp = %d, %v; want status 0", st, err)
			}
			res, err := c.FindEndp("e")
			got, st := res.FD, res.Status
			if err != nil || st != scache.StatusOK {
				t.Fatalf("FindEndp = %d, %v; want a hit", st, err)
			}
			if !fdtest.SameFile(t, got, fd) {
				t.Error("FindEndp handed out another file")
			}
			unix.Close(got)
			stats, err := c.ServerStats()
			if err != nil {
				t.Fatal(err)
			}
			if stats.NonSockets != tt.want {
				t.Errorf("NonSockets = %d, want %d", stats.NonSockets, tt.want)
			}
			if logged := strings.Contains(logs.String(), "endpoint e: cached descriptor"); logged != (tt.want > 0) {
				t.Errorf("warning logged: %v, want %v:\n%s", logged, tt.want > 0, logs.String())
			}
		})
	}
}
