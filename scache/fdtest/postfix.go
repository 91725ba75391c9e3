package fdtest

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// StartPostfixScache runs Postfix's own scache(8) outside master(8), as
// PROTOCOL.md §6.10 Option A describes: a private main.cf, the listening
// socket at fd 6, the status socket at fd 5, the flow pipe at fds 3 and 4.
// Closing the status socket at the end of the test makes it exit. mainCF
// is added to the minimal main.cf. It returns the socket path and scache's
// log (-V writes it to stderr). It skips t when Postfix cannot be run
// here, or fails it under CI=true, where Postfix is installed.
func StartPostfixScache(t testing.TB, mainCF string) (string, *SyncBuffer) {
	t.Helper()
	const bin = "/usr/lib/postfix/sbin/scache"
	if _, err := os.Stat(bin); err != nil {
		skipOrFail(t, "Postfix's scache is not installed: %v", err)
	}
	if _, err := user.Lookup("postfix"); err != nil {
		skipOrFail(t, "no postfix user: %v", err)
	}
	dir := t.TempDir()
	queue := filepath.Join(dir, "queue")
	if err := os.Mkdir(queue, 0o755); err != nil {
		t.Fatal(err)
	}
	mainCF = "queue_directory = " + queue + "\nmail_owner = postfix\nsetgid_group = postdrop\n" +
		"default_privs = nobody\nmyhostname = test.example\ncompatibility_level = 3.6\n" +
		"maillog_file =\n" + mainCF
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "scache")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	lf, err := ul.File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := unix.SetNonblock(int(lf.Fd()), true); err != nil {
		t.Fatal(err)
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Our end is non-blocking so that os.File polls it and Close can end
	// the draining Read below (and so really close the socket).
	if err := unix.SetNonblock(sp[0], true); err != nil {
		t.Fatal(err)
	}
	status, childStatus := os.NewFile(uintptr(sp[0]), "status"), os.NewFile(uintptr(sp[1]), "status-child")
	defer childStatus.Close()
	flowR, flowW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer flowR.Close()
	defer flowW.Close()
	logs := &SyncBuffer{}
	cmd := exec.Command(bin, "-l", "-t", "unix", "-V")
	cmd.Env = []string{"MAIL_CONFIG=" + dir, "GENERATION=1", "LANG=C"}
	cmd.ExtraFiles = []*os.File{flowR, flowW, childStatus, lf} // fds 3, 4, 5, 6
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		skipOrFail(t, "cannot start %s: %v", bin, err)
	}
	// Drain the status records so that scache never blocks on them.
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := status.Read(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		status.Close() // "master went away": scache exits
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("scache exited: %v\n%s", err, logs)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // fails only when it has exited meanwhile
			t.Errorf("scache did not exit when its status socket closed (killed: %v)", <-done)
		}
	})
	return sock, logs
}

// skipOrFail skips t, or fails it under CI=true: CI installs Postfix, so
// there a missing or broken one is a failure, not a reason to skip.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
