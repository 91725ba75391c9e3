package fdtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CopyTestBinary copies the running test binary into dir as name and
// opens dir and its parents below the temporary directory to everyone
// (search and read: 0755), so that a child started as another user can run
// it (the go tool builds test binaries in a private directory). dir must
// lie below os.TempDir(); the temporary directory itself and everything
// above it are left alone (a chmod of /tmp would drop its sticky bit). It
// returns the copy's path.
func CopyTestBinary(t testing.TB, dir, name string) string {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	d := filepath.Clean(dir)
	if rel, err := filepath.Rel(tmp, d); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		t.Fatalf("fdtest: %s is not below %s", dir, tmp)
	}
	for ; d != tmp; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, name)
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// ProbeAnnouncement connects to the Unix socket at path and says what the
// server did first: "announced" when it wrote want, "closed" when it
// closed the connection without a byte, and otherwise what went wrong.
// The peer-credential tests run it in a child started as another user.
func ProbeAnnouncement(path, want string) string {
	nc, err := net.Dial("unix", path)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second)) // best effort: the read below then waits for the server
	buf := make([]byte, len(want))
	_, err = io.ReadFull(nc, buf)
	switch {
	case err == nil && string(buf) == want:
		return "announced"
	case errors.Is(err, io.EOF):
		return "closed"
	}
	return "read: " + strings.ReplaceAll(string(buf), "\x00", "|") + " " + fmt.Sprint(err)
}
