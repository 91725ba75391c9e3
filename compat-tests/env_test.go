//go:build compat

package compattest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/compat-tests/sink"
)

var (
	flagDaemonDir  = flag.String("compat.daemon-dir", envOr("COMPAT_DAEMON_DIR", pfx.DefaultDaemonDir), "Postfix daemon directory (scache, master, smtp, ...)")
	flagCommandDir = flag.String("compat.command-dir", envOr("COMPAT_COMMAND_DIR", pfx.DefaultCommandDir), "Postfix command directory (postfix, postconf, sendmail)")
	flagGoscache   = flag.String("compat.goscache", os.Getenv("COMPAT_GOSCACHE"), "goscache binary to test; empty: build ./cmd/goscache; none: real scache only")
	flagPort       = flag.Int("compat.port", envInt("COMPAT_PORT", 2525), "first of the three sink ports: real scache's side, goscache's side (+1), TestSystemInstall (+2)")
	flagKeep       = flag.Bool("compat.keep", false, "keep the instances' directories (logs) after the run")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// inCI reports whether a missing prerequisite must fail rather than skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// requirePostfix skips (or, under CI=true, fails) t when real Postfix
// cannot be run here.
func requirePostfix(t *testing.T) {
	t.Helper()
	if why := postfixMissing(); why != "" {
		if inCI() {
			t.Fatalf("compat suite cannot run (CI=true): %s", why)
		}
		t.Skipf("compat suite skipped: %s (run compat-tests/setup.sh as root)", why)
	}
}

func postfixMissing() string {
	if os.Geteuid() != 0 {
		return "not running as root (Postfix's master needs root)"
	}
	for _, f := range []string{
		filepath.Join(*flagDaemonDir, "scache"),
		filepath.Join(*flagDaemonDir, "master"),
		filepath.Join(*flagDaemonDir, "smtp"),
		filepath.Join(*flagCommandDir, "postfix"),
		filepath.Join(*flagCommandDir, "sendmail"),
	} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Sprintf("Postfix is not installed (%s missing)", f)
		}
	}
	return ""
}

// goscacheBinary returns the goscache binary under test, building it from
// ./cmd/goscache once per run when -compat.goscache is empty. ok is false
// (with the reason) when the repository has no goscache daemon yet.
var goscacheBinary = sync.OnceValues(func() (string, error) {
	switch *flagGoscache {
	case "none":
		return "", fmt.Errorf("%w: -compat.goscache=none", errNoGoscache)
	case "":
	default:
		return *flagGoscache, nil
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "compat-goscache-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "goscache")
	cmd := exec.CommandContext(context.Background(), goTool(), "build", "-o", bin, "./cmd/goscache")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "no Go files") {
			return "", errNoGoscache
		}
		return "", fmt.Errorf("%w: go build ./cmd/goscache: %v: %s", errNoGoscache, err, out)
	}
	return bin, nil
})

// errNoGoscache: the repository has no buildable goscache daemon. Outside
// CI the goscache side is then skipped with this message.
var errNoGoscache = errors.New("no goscache daemon to test (./cmd/goscache)")

func goTool() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// requireGoscache returns the goscache binary, or skips t (fails under
// CI=true) when there is none yet.
func requireGoscache(t *testing.T) string {
	t.Helper()
	bin, err := goscacheBinary()
	if errors.Is(err, errNoGoscache) && !inCI() {
		t.Skipf("goscache side skipped: %v", err)
	}
	if err != nil {
		t.Fatalf("goscache: %v", err)
	}
	return bin
}

// waitDelivered waits until inst's queue is empty and sk has received
// sent messages, for at most a minute.
//
// One wait is Postfix's own and is cut short: after postfix reload, the
// new qmgr(8) moves the active queue back to incoming when it starts, and
// a queue file that a delivery agent of the old generation still holds
// locked (it is finishing that delivery: the sink may have the message
// already, and smtp(8) then saves the connection to the cache) is logged
// as "<id>: skipped, still being delivered" and put back into incoming
// with a time stamp 60 seconds ahead, which no queue scan looks past. Once
// the sink has every message and each file still queued is one of those,
// the queue is flushed (postqueue -f ignores the time stamps), again every
// two seconds while the old agent still holds a lock; the queue manager
// then finds every recipient done and removes the file, or delivers the
// message once more, which the callers count as a duplicate. A file that
// qmgr did not log so is waited for as before: that is not the reload's
// doing. See docs/compat.md, "A message held 60 seconds after a reload".
// held reports the queue IDs that were flushed so (nil: none).
func waitDelivered(inst *pfx.Instance, sk *sink.Sink, sent int) (held []string, err error) {
	deadline := time.Now().Add(time.Minute)
	var flushed time.Time
	for {
		q, err := inst.QueueCount()
		if err != nil {
			return held, err
		}
		got := sk.Total().Messages
		if q == 0 && got >= sent {
			return held, nil
		}
		if got >= sent && time.Since(flushed) >= 2*time.Second {
			if ids := heldAfterReload(inst); len(ids) > 0 {
				for _, id := range ids {
					if !slices.Contains(held, id) {
						held = append(held, id)
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := inst.Flush(ctx)
				cancel()
				if err != nil {
					return held, err
				}
				flushed = time.Now()
			}
		}
		if time.Now().After(deadline) {
			return held, fmt.Errorf("%d messages still queued, %d of %d delivered after a minute (log %s)%s", q, got, sent, inst.LogFile, stuckReport(inst))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heldAfterReload returns the queue IDs of inst's queued files when every
// one of them is a file that qmgr(8) logged as "skipped, still being
// delivered" (see waitDelivered), and nil otherwise.
func heldAfterReload(inst *pfx.Instance) []string {
	var queued []string
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		filepath.WalkDir(filepath.Join(inst.QueueDir, q), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				queued = append(queued, d.Name())
			}
			return nil
		})
	}
	if len(queued) == 0 {
		return nil
	}
	lines, err := inst.LogSince(0)
	if err != nil {
		return nil
	}
	skipped := map[string]bool{}
	for _, l := range lines {
		if id, ok := strings.CutSuffix(l.Text, ": skipped, still being delivered"); ok && l.Program == "qmgr" {
			skipped[id] = true
		}
	}
	for _, id := range queued {
		if !skipped[id] {
			return nil
		}
	}
	return queued
}

// stuckReport describes a queue that did not drain, for the failure
// message (a container's log is gone once the run ends): the queue files
// by directory, then the last lines of the instance's log.
func stuckReport(inst *pfx.Instance) string {
	var b strings.Builder
	b.WriteString("\nqueued files:")
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		filepath.WalkDir(filepath.Join(inst.QueueDir, q), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b.WriteString(" " + q + "/" + d.Name())
			}
			return nil
		})
	}
	// What each file is: its headers, as postcat shows them (an
	// incomplete file shows as such).
	for _, q := range []string{"incoming", "active", "deferred", "hold"} {
		ents, _ := os.ReadDir(filepath.Join(inst.QueueDir, q))
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			out, _ := exec.Command(filepath.Join(*flagCommandDir, "postcat"), "-c", inst.ConfigDir, "-ehq", e.Name()).CombinedOutput()
			fmt.Fprintf(&b, "\npostcat -ehq %s:\n%s", e.Name(), out)
		}
	}
	log, err := os.ReadFile(inst.LogFile)
	if err != nil {
		return b.String() + "\nlog: " + err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	b.WriteString("\nlast lines of the log:\n")
	b.WriteString(strings.Join(lines[max(0, len(lines)-60):], "\n"))
	return b.String()
}

// createInstance creates a private Postfix instance with opts (whose Root
// is the instance's directory) and stops it when the test ends: kept, with
// its log named, when the test failed or -compat.keep is set, removed
// otherwise. name labels it in the log.
func createInstance(t *testing.T, name string, opts pfx.Options) *pfx.Instance {
	t.Helper()
	inst, err := pfx.Create(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inst.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		if t.Failed() || *flagKeep {
			t.Logf("%s instance kept in %s (log %s)", name, opts.Root, inst.LogFile)
		} else {
			os.RemoveAll(opts.Root)
		}
	})
	return inst
}
