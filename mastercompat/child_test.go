package mastercompat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The child tests re-execute the test binary the way master(8) starts a
// daemon: fds 3/4 flow pipe, 5 status socketpair, 6 listener, GENERATION
// in the environment. envChild switches the binary into child mode, where
// childMain plays a tiny line-echo daemon built from this package.
const (
	envChild     = "MASTERCOMPAT_TEST_CHILD"
	envChildArgv = "MASTERCOMPAT_TEST_ARGV"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

func childMain() int {
	// The test service has a parameter of its own, read by Configure, and
	// a BeforeJail step that fails when asked to.
	svc := Service{
		Name:     "scache",
		Defaults: map[string]string{"child_test_ttl": "2s"},
		Configure: func(cfg *Config) error {
			_, err := cfg.Time("child_test_ttl", time.Second)
			return err
		},
		BeforeJail: func(c *Child) error {
			if v := c.Config.Get("child_test_jail"); v != "" {
				return errors.New("before jail: " + v)
			}
			return nil
		},
	}
	c, err := Start(context.Background(), svc, StartOptions{
		Argv:       strings.Fields(os.Getenv(envChildArgv)),
		Stderr:     os.Stderr,
		SyslogPath: filepath.Join(os.Getenv("MAIL_CONFIG"), "no-syslog"),
	})
	if err != nil {
		return 1
	}
	defer c.Close()
	log, p, ls, m := c.Logger, c.Params, c.Listeners, c.Master
	var cloexec []string
	for fd := flowReadFD; fd < listenFD+c.Args.socketCount; fd++ {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC != 0 {
			cloexec = append(cloexec, fmt.Sprint(fd))
		}
	}
	// Listen sockets from fd 6 on are closed by now: each listener holds
	// its own duplicate.
	log.Info("cloexec " + strings.Join(cloexec, ","))
	idle := NewIdleTimer(p.MaxIdle)
	var (
		mu      sync.Mutex
		clients int
	)
	count := func(d int) {
		mu.Lock()
		clients += d
		idle.ConnCount(clients)
		mu.Unlock()
	}
	for _, l := range ls {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				count(1)
				go func() {
					defer count(-1)
					defer c.Close()
					io.WriteString(c, "hello\n")
					r := bufio.NewReader(c)
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						m.Busy(true)
						io.WriteString(c, "echo: "+line)
						if m.Busy(false) != nil {
							return
						}
					}
				}()
			}
		}()
	}
	select {
	case <-m.Gone():
		log.Info("master disconnect -- exiting")
	case <-idle.Done():
		log.Info("idle timeout -- exiting")
	}
	return 0
}

type child struct {
	cmd    *exec.Cmd
	status *os.File // master's end of the status socketpair
	sock   string   // path of the listen socket
	stderr *bytes.Buffer
	done   chan error
}

func startChild(t *testing.T, argv string, env ...string) *child {
	t.Helper()
	dir := t.TempDir()
	flowR, flowW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	childEnd, masterEnd := socketpair(t)
	sock := filepath.Join(dir, "scache")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	// The child logs on stderr (-V) and to a syslog socket that does not
	// exist; main.cf puts the queue directory where the child may chdir.
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte("queue_directory = "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{envChild + "=1", envChildArgv + "=" + argv, "LANG=C", "MAIL_CONFIG=" + dir}, env...)
	// Under -cover the child would warn on stderr without a place for its
	// coverage data; the tests compare stderr exactly.
	cmd.Env = append(cmd.Env, "GOCOVERDIR="+t.TempDir())
	cmd.ExtraFiles = []*os.File{flowR, flowW, childEnd, lf}
	c := &child{cmd: cmd, status: masterEnd, sock: sock, stderr: new(bytes.Buffer), done: make(chan error, 1)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{flowR, flowW, childEnd, lf} {
		f.Close() // the child has its copies, as after master_spawn
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.done
	})
	return c
}

// wait waits for the child to exit and returns its exit code.
func (c *child) wait(t *testing.T) int {
	t.Helper()
	err := <-c.done
	c.done <- err
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0
}

func (c *child) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("unix", c.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("announcement = %q, %v", line, err)
	}
	return conn, r
}

func ping(t *testing.T, conn net.Conn, r *bufio.Reader, s string) {
	t.Helper()
	if _, err := io.WriteString(conn, s+"\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "echo: "+s+"\n" {
		t.Fatalf("reply = %q, %v", line, err)
	}
}

func (c *child) readStatus(t *testing.T) (pid int32, gen uint32, avail int32) {
	t.Helper()
	buf := make([]byte, RecordSize)
	if _, err := io.ReadFull(c.status, buf); err != nil {
		t.Fatalf("read status record: %v", err)
	}
	pid, gen, avail, err := ParseRecord(buf)
	if err != nil {
		t.Fatal(err)
	}
	return pid, gen, avail
}

func TestChild_serveAndMasterDisconnect(t *testing.T) {
	c := startChild(t, "goscache -l -n scache -t unix -V", "GENERATION=17")
	conn, r := c.dial(t)
	for i, want := range []string{"one", "two"} {
		ping(t, conn, r, want)
		for _, avail := range []int32{StatusTaken, StatusAvail} {
			pid, gen, got := c.readStatus(t)
			if pid != int32(c.cmd.Process.Pid) || gen != 15 || got != avail {
				t.Errorf("request %d: record {pid %d gen %d avail %d}, want {pid %d gen 15 avail %d}",
					i, pid, gen, got, c.cmd.Process.Pid, avail)
			}
		}
	}
	c.status.Close() // postfix reload: master closes the status channel
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, c.stderr)
	}
	out := c.stderr.String()
	for _, want := range []string{"cloexec 3,4,5\n", "master disconnect -- exiting\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

func TestChild_maxIdle(t *testing.T) {
	c := startChild(t, "scache -l -t unix -i 1 -V")
	conn, r := c.dial(t)
	// A connected client keeps the child alive beyond max_idle.
	time.Sleep(1500 * time.Millisecond)
	ping(t, conn, r, "still there")
	conn.Close()
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, c.stderr)
	}
	if out := c.stderr.String(); !strings.Contains(out, "idle timeout -- exiting\n") {
		t.Errorf("stderr lacks the idle exit:\n%s", out)
	}
}

func TestChild_fatal(t *testing.T) {
	tests := []struct {
		argv string
		env  []string
		want string
	}{
		{"scache -t unix -u -c -V", nil, "fatal: service scache requires a process limit of 1"},
		{"scache -l -t unix -V", []string{"GENERATION=12a"}, "fatal: bad generation: 12a"},
		{"scache -l -t unix -V -o max_idle=-1", nil, "fatal: parameter max_idle: bad time value or unit: -1"},
		{"scache -l -t fifo -V", nil, "fatal: unsupported transport type: fifo"},
		{"scache -l -t unix -V -o child_test_ttl=0", nil, "fatal: invalid child_test_ttl: 0 (min 1)"},
		{"scache -l -t unix -V -o child_test_jail=no", nil, "fatal: before jail: no"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c := startChild(t, tt.argv, tt.env...)
			if code := c.wait(t); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			want := "postfix/scache: " + tt.want + "\n"
			if got := c.stderr.String(); got != want {
				t.Errorf("stderr = %q, want %q", got, want)
			}
		})
	}
}
