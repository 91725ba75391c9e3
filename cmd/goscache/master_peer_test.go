package main

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/goscache/goscache/scache/fdtest"
)

// envPeerClient makes TestPeerClientHelper connect to the socket it names
// and print "announced" or "closed" (the peer tests run it as other users).
const envPeerClient = "GOSCACHE_TEST_PEER_CLIENT"

func TestPeerClientHelper(t *testing.T) {
	path := os.Getenv(envPeerClient)
	if path == "" {
		t.Skip("helper process for the peer credential tests")
	}
	os.Stdout.WriteString(fdtest.ProbeAnnouncement(path, "protocol\x00connection_cache_protocol\x00\x00") + "\n")
	os.Exit(0)
}

// runAsUser runs TestPeerClientHelper as uid/gid against sock, from a copy
// of the test binary that every user can run, and returns what it printed.
func runAsUser(t *testing.T, sock string, uid, gid int) string {
	t.Helper()
	exe := fdtest.CopyTestBinary(t, t.TempDir(), "goscache.test")
	cmd := exec.Command(exe, "-test.run=^TestPeerClientHelper$")
	cmd.Env = append(os.Environ(), envPeerClient+"="+sock)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestMaster_peerCheck: under master(8) too, a client that is neither
// root, the daemon's user nor mail_owner is closed before the
// announcement and logged; mail_owner's processes (smtp(8)) are served.
func TestMaster_peerCheck(t *testing.T) {
	if !privileged() {
		t.Skip("needs root and a postfix user")
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	pfUID, _ := strconv.Atoi(pf.Uid)
	pfGID, _ := strconv.Atoi(pf.Gid)
	// No -u: the daemon stays root, so mail_owner is admitted as such.
	c := startMasterChild(t, "goscache -l -n scache -t unix", "")
	if got := runAsUser(t, c.sock, 65534, 65534); got != "closed" {
		t.Errorf("client as uid 65534: %s, want closed", got)
	}
	if got := runAsUser(t, c.sock, pfUID, pfGID); got != "announced" {
		t.Errorf("client as mail_owner: %s, want announced", got)
	}
	c.status.Close() // master goes away: the child exits
	if code, sig := c.wait(t); code != 0 || sig != 0 {
		t.Fatalf("exit code %d signal %v; stderr:\n%s", code, sig, &c.stderr)
	}
	logs := strings.Join(c.logLines(t), "\n")
	if !strings.Contains(logs, "warning: refusing connection from uid 65534 ") {
		t.Errorf("refusal not logged:\n%s", logs)
	}
}
