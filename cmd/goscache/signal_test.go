package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
)

// envStandaloneChild makes TestStandaloneChildHelper run the daemon with
// the arguments it holds (separated by spaces) instead of a test.
const envStandaloneChild = "GOSCACHE_TEST_STANDALONE_ARGS"

func TestStandaloneChildHelper(t *testing.T) {
	args := os.Getenv(envStandaloneChild)
	if args == "" {
		t.Skip("helper process for the standalone signal tests")
	}
	err := run(context.Background(), append([]string{"goscache"}, strings.Fields(args)...), os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// TestStandalone_signals: SIGHUP, SIGINT and SIGTERM each end a standalone
// daemon the same way: exit status 0, the statistics logged, the socket
// file removed.
func TestStandalone_signals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "scache")
			cmd := exec.Command(os.Args[0], "-test.run=^TestStandaloneChildHelper$")
			cmd.Env = append(os.Environ(), envStandaloneChild+"=-listen unix:"+path)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			sc := bufio.NewScanner(stderr)
			var log strings.Builder
			for sc.Scan() { // the daemon says when it listens
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "listening on") {
					break
				}
			}
			c, err := client.Dial(t.Context(), path)
			if err != nil {
				t.Fatalf("dial: %v\n%s", err, log.String())
			}
			if res, err := c.FindDest("smtp:example.com"); err != nil || res.Status != scache.StatusFail {
				t.Fatalf("FindDest = %d, %v; want a miss", res.Status, err)
			}
			c.Close()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("daemon ended with %v after %v, want exit status 0\n%s", err, sig, log.String())
			}
			for _, want := range []string{"statistics: domain lookup hits=0 miss=1 success=0%", "stopped"} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, log.String())
				}
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket file left behind after %v: %v", sig, err)
			}
		})
	}
}
