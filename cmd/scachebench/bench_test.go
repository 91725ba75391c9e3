package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	"github.com/goscache/goscache/mastercompat"
	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
)

// startBenchFloor serves the floor on a socket under t.TempDir() until the test
// ends.
func startBenchFloor(t *testing.T, status bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "floor")
	// Socket and status pipe exist before serving starts: no connect is
	// refused and descriptor counts taken from now on are stable.
	l, fs, release, err := newFloorPath(path, status)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveFloorOn(ctx, l, fs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("floor: %v", err)
		}
		release()
	})
	return path
}

func startBenchGoscache(t *testing.T) string {
	t.Helper()
	return scachetest.NewServer(t, server.Options{Logger: slog.New(slog.DiscardHandler)}).Path
}

func TestRunLoad_cycles(t *testing.T) {
	floor := func(t *testing.T) string { return startBenchFloor(t, true) }
	tests := []struct {
		name   string
		start  func(t *testing.T) string
		labels string
		rate   float64
	}{
		{"goscache", startBenchGoscache, labelsFresh, 0},
		{"floor", floor, labelsFresh, 0},
		{"floorNoStatus", func(t *testing.T) string { return startBenchFloor(t, false) }, labelsFresh, 0},
		// Each client has 2 destinations and runs 10 cycles: every label
		// comes back 5 times, and the lookups must still miss, then hit.
		{"goscacheReuse", startBenchGoscache, labelsReuse, 0},
		{"floorReuse", floor, labelsReuse, 0},
		{"goscacheOpenLoop", startBenchGoscache, labelsReuse, 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.start(t)
			before := openFDs()
			res, err := runLoad(t.Context(), loadSpec{
				target: benchTarget{Name: tt.name, Socket: path, PID: os.Getpid()}, clients: 3, cycles: 10,
				ttl: 2 * time.Second, timeout: 10 * time.Second, labels: tt.labels, dests: 2, rate: tt.rate,
			})
			if err != nil {
				t.Fatalf("runLoad: %v", err)
			}
			if res.Rate != tt.rate || (res.Labels == labelsReuse) != (tt.labels == labelsReuse) {
				t.Errorf("rate, labels = %v, %q; want %v, %q", res.Rate, res.Labels, tt.rate, tt.labels)
			}
			if res.Errors != 0 {
				t.Errorf("errors = %d: %q", res.Errors, res.ErrorSamples)
			}
			if res.Cycles != 30 || res.Requests != 150 {
				t.Errorf("cycles, requests = %d, %d; want 30, 150", res.Cycles, res.Requests)
			}
			for _, k := range append(reqKinds, kindCycle) {
				name := "cycle"
				if k != kindCycle {
					name = k.String()
				}
				l := res.Latency[name]
				if l.Count != 30 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
					t.Errorf("latency %s = %+v", name, l)
				}
			}
			if res.CyclesPerSec <= 0 {
				t.Errorf("cycles/s = %v", res.CyclesPerSec)
			}
			if leaked := leakedFDs(before); leaked != nil {
				t.Errorf("descriptors left open: %q", leaked)
			}
		})
	}
}

// TestRunLoad_badServer checks that wrong answers are counted and that a
// run with no good cycle fails.
func TestRunLoad_badServer(t *testing.T) {
	path := fdtest.ServeUnix(t, func(c net.Conn) {
		c.Write([]byte(scachetest.Announcement))
		r := bufio.NewReader(c)
		for { // answer every record with status=1 only
			name, err := r.ReadString(0)
			if err != nil {
				return
			}
			if name == "\x00" {
				c.Write([]byte("status\x001\x00\x00"))
			} else if _, err := r.ReadString(0); err != nil {
				return
			}
		}
	})
	res, err := runLoad(t.Context(), loadSpec{
		target: benchTarget{Name: "bad", Socket: path}, clients: 1, cycles: 3, ttl: 2 * time.Second, timeout: 5 * time.Second,
	})
	if err == nil || res.Cycles != 0 || res.Errors < 3 || len(res.ErrorSamples) == 0 {
		t.Errorf("runLoad = %+v, %v; want errors and no cycle", res, err)
	}
}

func TestBench_json(t *testing.T) {
	path := startBenchGoscache(t)
	floor := startBenchFloor(t, true)
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"-target", "go=" + path, "-target", "floor=" + floor,
		"-clients", "1,2", "-rounds", "2", "-cycles", "3", "-warmup", "0", "-json"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode %s: %v", out.String(), err)
	}
	if len(rep.Runs) != 8 || rep.FDsLeaked != 0 {
		t.Fatalf("runs = %d, leaked = %d; want 8, 0", len(rep.Runs), rep.FDsLeaked)
	}
	seen := map[string]int{}
	for _, r := range rep.Runs {
		seen[r.Target]++
		if r.Errors != 0 || r.Cycles != 3*r.Clients {
			t.Errorf("run %+v", r)
		}
	}
	if seen["go"] != 4 || seen["floor"] != 4 {
		t.Errorf("runs per target = %v", seen)
	}
	// Targets alternate which goes first.
	if rep.Runs[0].Target == rep.Runs[2].Target {
		t.Errorf("order not rotated: %s then %s", rep.Runs[0].Target, rep.Runs[2].Target)
	}
}

func TestBench_table(t *testing.T) {
	path := startBenchGoscache(t)
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"-socket", path, "-clients", "2", "-cycles", "2", "-warmup", "0"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "target") || !strings.HasPrefix(lines[1], "server ") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestBench_scaleAndHeap(t *testing.T) {
	path := startBenchGoscache(t)
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"-target", "go=" + path, "-pid", "go=" + strconv.Itoa(os.Getpid()),
		"-clients", "", "-scale", "5,20", "-cycles", "2", "-warmup", "0", "-heap", "50", "-json", "-check-fds=false"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(rep.Runs) != 0 || len(rep.Scale) != 2 || rep.Scale[0].Cached != 5 || rep.Scale[1].Cached != 20 {
		t.Errorf("runs %d, scale %+v", len(rep.Runs), rep.Scale)
	}
	if len(rep.Memory) != 3 || rep.Memory[2].Cached != 20 || rep.Memory[2].RSSKB <= 0 {
		t.Errorf("memory %+v", rep.Memory)
	}
	if len(rep.Heap) != 1 || rep.Heap[0].Cached != 50 || rep.Heap[0].BytesPerConn <= 0 || rep.Heap[0].PayloadPerConn < 100 {
		t.Errorf("heap %+v", rep.Heap)
	}
}

func TestBench_errors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"noSocket", []string{"-target", "x=" + filepath.Join(t.TempDir(), "none"), "-clients", "1", "-cycles", "1"}, "no such file"},
		{"badClients", []string{"-clients", "1,x"}, "-clients"},
		{"badTarget", []string{"-target", "x"}, "NAME=PATH"},
		{"badRounds", []string{"-rounds", "0"}, "positive"},
		{"ttlFraction", []string{"-ttl", "1500ms"}, "whole seconds"},
		{"ttlZero", []string{"-ttl", "0"}, "whole seconds"},
		{"scaleTTLFraction", []string{"-scale-ttl", "0.5s"}, "whole seconds"},
		{"ttlNotDuration", []string{"-ttl", "two"}, "not a duration"},
		{"floorMasterNotFirst", []string{"-json", "-floor-master"}, "first argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(t.Context(), append([]string{"-socket", "/nonexistent"}, tt.args...), &out, &errb)
			if err == nil || !strings.Contains(err.Error()+errb.String(), tt.want) {
				t.Errorf("err = %v, stderr %q; want %q", err, errb.String(), tt.want)
			}
		})
	}
}

// TestFloor_requests checks the floor's answers byte for byte.
func TestFloor_requests(t *testing.T) {
	path := startBenchFloor(t, false)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	read := func(n int) string {
		t.Helper()
		b := make([]byte, n)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(b)
	}
	if got := read(len(floorAnnounce)); got != string(floorAnnounce) {
		t.Fatalf("announcement %q", got)
	}
	tests := []struct{ req, want string }{
		{"request\x00frob\x00\x00", "status\x001\x00\x00"},
		{"request\x00find_dest\x00label\x00d\x00\x00", string(floorDestMiss)},
		{"request\x00find_endp\x00label\x00e\x00\x00", string(floorEndpMiss)},
		{"request\x00save_dest\x00ttl\x002\x00label\x00d\x00property\x00dp\x00label\x00e\x00\x00", "status\x000\x00\x00"},
	}
	for _, tt := range tests {
		c.Write([]byte(tt.req))
		if got := read(len(tt.want)); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.req, got, tt.want)
		}
	}
}

// startFloorMaster starts the floor in a child process as master(8)
// would: argv as master builds it, fds 5 (status) and 6 (listener),
// GENERATION, and a main.cf whose queue directory the child can chdir to.
// It returns the socket path, master's end of the status channel and the
// child's command, which has been started.
func startFloorMaster(t *testing.T, argv string) (path string, status *os.File, cmd *exec.Cmd, out *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte("queue_directory = "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "floor")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	lf, err := l.File()
	l.SetUnlinkOnClose(false)
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	status, child := os.NewFile(uintptr(sp[0]), "status"), os.NewFile(uintptr(sp[1]), "status child")
	t.Cleanup(func() { status.Close() })
	cmd = exec.Command(os.Args[0], "-test.run=^TestFloorMaster_child$")
	cmd.Env = append(os.Environ(), "SCACHEBENCH_FLOOR_CHILD="+argv, "GENERATION=17", "MAIL_CONFIG="+dir, "LANG=C",
		"GOCOVERDIR="+t.TempDir())
	cmd.ExtraFiles = []*os.File{nil, nil, child, lf} // fds 3, 4, 5, 6
	out = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	return path, status, cmd, out
}

// TestFloor_requestAllocs locks in that the floor answers every request
// of smtp(8)'s cycle without allocating: it is the least a server can do,
// and an allocation per request would flatter goscache/floor. Each round
// is the whole cycle, descriptors included (find_dest and find_endp
// misses, save_dest, save_endp with a descriptor, the find_dest hit that
// hands it back), plus an unknown request. The floor's connection is
// driven directly on one end of a socketpair; a client goroutine on the
// other end sends the requests and descriptors with the floor's own raw
// I/O and checks each reply, so that it allocates nothing either.
func TestFloor_requestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b := fdtest.UnixPair(t)
	fc, err := newFloorConn(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fc.close)
	cl, err := newFloorIO(b)
	if err != nil {
		t.Fatal(err)
	}
	cached := fdtest.PipeFD(t) // the descriptor the cycle caches
	want := fdtest.Identity(t, cached)
	hit := []byte("status\x000\x00property\x00dp\x00property\x00ep\x00\x00")
	steps := []struct {
		req, reply []byte
		send, recv bool   // a descriptor to send after the reply, or to receive (a hit)
		then       []byte // the reply after the descriptor was sent
	}{
		{req: []byte("request\x00frob\x00\x00"), reply: floorStatus1},
		{req: []byte("request\x00find_dest\x00label\x00d\x00\x00"), reply: floorDestMiss},
		{req: []byte("request\x00find_endp\x00label\x00e\x00\x00"), reply: floorEndpMiss},
		{req: []byte("request\x00save_dest\x00ttl\x002\x00label\x00d\x00property\x00dp\x00label\x00e\x00\x00"), reply: floorStatus0},
		{req: []byte("request\x00save_endp\x00ttl\x002\x00label\x00e\x00property\x00ep\x00\x00"), reply: floorDummy, send: true, then: floorStatus0},
		{req: []byte("request\x00find_dest\x00label\x00d\x00\x00"), reply: hit, recv: true},
	}
	dummy := []byte("dummy\x00\x00\x00")
	got := make([]byte, 128)
	var st unix.Stat_t
	// The client runs one cycle per value received on start and reports
	// its first failure (or nil) on done.
	start, done := make(chan struct{}), make(chan error)
	var clientErr error
	expect := func(w []byte) {
		if clientErr != nil {
			return
		}
		if _, err := io.ReadFull(cl, got[:len(w)]); err != nil {
			clientErr = err
		} else if !bytes.Equal(got[:len(w)], w) {
			clientErr = errors.New("reply " + strconv.Quote(string(got[:len(w)])) + ", want " + strconv.Quote(string(w)))
		}
	}
	go func() {
		for range start {
			clientErr = nil
			for _, s := range steps {
				if _, err := cl.Write(s.req); err != nil && clientErr == nil {
					clientErr = err
				}
				expect(s.reply)
				if s.send && clientErr == nil {
					clientErr = cl.sendFD(cached)
					expect(s.then)
				}
				if s.recv && clientErr == nil {
					cl.Write(dummy)
					fd, err := cl.recvFD()
					switch {
					case err != nil:
						clientErr = err
					case fd < 0:
						clientErr = errors.New("find_dest hit: no descriptor")
					default:
						if unix.Fstat(fd, &st) != nil || [2]uint64{st.Dev, st.Ino} != want {
							clientErr = errors.New("find_dest hit: not the descriptor cached")
						}
						floorClose(fd)
					}
					cl.Write(dummy)
				}
			}
			done <- clientErr
		}
	}()
	defer close(start)
	var failed error
	allocs := testing.AllocsPerRun(100, func() {
		start <- struct{}{}
		for range steps {
			if err := fc.request(); err != nil && failed == nil {
				failed = err
			}
		}
		if err := <-done; err != nil && failed == nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if fc.held >= 0 {
		t.Errorf("the floor still holds descriptor %d after the hit", fc.held)
	}
	if allocs != 0 {
		t.Errorf("the floor allocated %v times per round of %d requests, want 0", allocs, len(steps))
	}
}

// TestFloorMaster runs the floor as a master(8) child: a re-executed test
// binary gets the status socketpair at fd 5 and the listener at fd 6,
// answers the cycle, writes its one TAKEN/AVAIL pair, and exits when the
// status channel closes.
func TestFloorMaster(t *testing.T) {
	if os.Getenv("SCACHEBENCH_FLOOR_CHILD") != "" {
		t.Skip("parent only")
	}
	path, status, cmd, out := startFloorMaster(t, "floor -l -n floor -t unix")
	records := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(status)
		records <- b
	}()
	res, err := runLoad(t.Context(), loadSpec{
		target: benchTarget{Name: "floor", Socket: path}, clients: 1, cycles: 4, ttl: 2 * time.Second, timeout: 10 * time.Second,
	})
	if err != nil || res.Errors != 0 || res.Cycles != 4 {
		t.Errorf("runLoad = %+v, %v", res, err)
	}
	unix.Shutdown(int(status.Fd()), unix.SHUT_WR) // master goes away
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	b := <-records
	if len(b) == 0 || len(b)%mastercompat.RecordSize != 0 {
		t.Fatalf("status channel carried %d bytes", len(b))
	}
	// One TAKEN/AVAIL pair for the 4 cycles, as goscache writes them under
	// master(8) with a process limit of 1.
	if len(b) != 2*mastercompat.RecordSize {
		t.Errorf("status channel carried %d records, want 2", len(b)/mastercompat.RecordSize)
	}
	for i := 0; i < len(b); i += mastercompat.RecordSize {
		pid, gen, avail, err := mastercompat.ParseRecord(b[i : i+mastercompat.RecordSize])
		want := int32(mastercompat.StatusTaken)
		if (i/mastercompat.RecordSize)%2 == 1 {
			want = mastercompat.StatusAvail
		}
		if err != nil || int(pid) != cmd.Process.Pid || gen != 0o17 || avail != want {
			t.Errorf("record %d: pid %d gen %o avail %d, %v; want pid %d gen 17 avail %d", i/mastercompat.RecordSize, pid, gen, avail, err, cmd.Process.Pid, want)
		}
	}
}

// TestFloorMaster_fatal checks that the floor goes through master(8)
// child start-up: argv master would refuse is fatal, logged as Postfix
// logs it (here on stderr under -V), with exit status 1.
func TestFloorMaster_fatal(t *testing.T) {
	if os.Getenv("SCACHEBENCH_FLOOR_CHILD") != "" {
		t.Skip("parent only")
	}
	tests := []struct{ name, argv, want string }{
		{"noProcessLimit", "floor -n floor -t unix -V", "fatal: service floor requires a process limit of 1"},
		{"noTransport", "floor -l -n floor -V", "fatal: no transport type specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, cmd, out := startFloorMaster(t, tt.argv)
			err := cmd.Wait()
			if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != 1 || !strings.Contains(out.String(), tt.want) {
				t.Errorf("child: %v, output:\n%s\nwant exit status 1 and %q", err, out.String(), tt.want)
			}
		})
	}
}

func TestFloorMaster_child(t *testing.T) {
	argv := os.Getenv("SCACHEBENCH_FLOOR_CHILD")
	if argv == "" {
		t.Skip("run by TestFloorMaster")
	}
	err := serveFloorMaster(context.Background(), mastercompat.StartOptions{
		Argv: strings.Fields(argv), Stderr: os.Stderr,
		SyslogPath: filepath.Join(os.Getenv("MAIL_CONFIG"), "no-syslog"),
	})
	if _, ok := errors.AsType[*mastercompat.LoggedError](err); ok {
		os.Exit(1) // as main does: the fatal line is logged
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestLeakedFDs checks that the leak check names the descriptors opened
// since the snapshot, and only those: an epoll instance and an eventfd (what
// the Go runtime's netpoller opens on first use) are not the bench's.
func TestLeakedFDs(t *testing.T) {
	before := openFDs()
	if before == nil {
		t.Skip("no /proc/self/fd")
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ev)
	if got := leakedFDs(before); got != nil {
		t.Errorf("leakedFDs with only an epoll and an eventfd opened = %q, want none", got)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	got := leakedFDs(before)
	unix.Close(p[0])
	unix.Close(p[1])
	if len(got) != 2 || !strings.HasPrefix(got[0], strconv.Itoa(min(p[0], p[1]))+" pipe:[") {
		t.Errorf("leakedFDs with a pipe open = %q, want its two ends", got)
	}
	if got := leakedFDs(before); got != nil {
		t.Errorf("leakedFDs after closing the pipe = %q, want none", got)
	}
}

// TestBench_freshProcess runs the bench the way a user does, in a new
// process whose Go runtime opens its netpoller's descriptors during the
// run (issue 14: they were counted as leaks and the bench exited 1).
func TestBench_freshProcess(t *testing.T) {
	if os.Getenv("SCACHEBENCH_BENCH_CHILD") != "" {
		t.Skip("parent only")
	}
	path := startBenchGoscache(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestBench_freshProcess_child$", "-test.v")
	cmd.Env = append(os.Environ(), "SCACHEBENCH_BENCH_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestBench_freshProcess_child") {
		t.Fatalf("bench in a new process: %v\n%s", err, out)
	}
}

func TestBench_freshProcess_child(t *testing.T) {
	path := os.Getenv("SCACHEBENCH_BENCH_CHILD")
	if path == "" {
		t.Skip("run by TestBench_freshProcess")
	}
	for _, target := range openFDs() {
		if runtimeFD(target) {
			t.Logf("the netpoller was open before the bench started: %s", target)
		}
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-socket", path, "-clients", "1,2", "-cycles", "3", "-warmup", "0"}, &out, &errb); err != nil {
		t.Fatalf("bench: %v\n%s%s", err, out.String(), errb.String())
	}
}

// TestProcessCPU checks that a process's CPU time is read and grows while
// it computes.
func TestProcessCPU(t *testing.T) {
	if processCPU(0) != -1 || processCPU(-5) != -1 {
		t.Errorf("processCPU of no pid is not -1")
	}
	c0 := processCPU(os.Getpid())
	if c0 < 0 {
		t.Fatalf("processCPU(self) = %v", c0)
	}
	x := 0
	for processCPU(os.Getpid()) <= c0 { // burns CPU until a clock tick is counted
		for i := range 1000000 {
			x ^= i
		}
	}
	_ = x
}

// TestBench_modeFlags checks the flags of the label modes and of the open
// loop through the command line.
func TestBench_modeFlags(t *testing.T) {
	path := startBenchGoscache(t)
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"-target", "go=" + path, "-pid", "go=" + strconv.Itoa(os.Getpid()),
		"-clients", "2", "-cycles", "4", "-warmup", "0", "-labels", "reuse", "-dests", "3", "-rate", "5000", "-json"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Labels != labelsReuse || rep.Runs[0].Rate != 5000 || rep.Runs[0].Cycles != 8 || rep.Runs[0].Errors != 0 {
		t.Errorf("runs %+v", rep.Runs)
	}
	// A rate per target: each run records the rate its target was offered.
	out.Reset()
	err = run(t.Context(), []string{"-target", "go=" + path, "-target", "go2=" + path, "-rate", "go=4000,go2=6000",
		"-clients", "2", "-cycles", "2", "-warmup", "0", "-json"}, &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	rep = benchReport{}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode: %v", err)
	}
	rates := map[string]float64{}
	for _, r := range rep.Runs {
		rates[r.Target] = r.Rate
	}
	if len(rep.Runs) != 2 || rates["go"] != 4000 || rates["go2"] != 6000 {
		t.Errorf("per-target rates: runs %+v", rep.Runs)
	}
	for _, args := range [][]string{{"-labels", "stale"}, {"-dests", "0"}, {"-rate", "-1"}, {"-rate", "go=0"}, {"-rate", "go=x"}, {"-rate", "other=5"}} {
		err := run(t.Context(), append([]string{"-target", "go=" + path}, args...), &out, &errb)
		if err == nil {
			t.Errorf("bench %q: no error", args)
		}
	}
}

// TestBench_ttlForms checks that -ttl and -scale-ttl take Go durations
// and bare seconds, as the flag help says.
func TestBench_ttlForms(t *testing.T) {
	path := startBenchGoscache(t)
	for _, args := range [][]string{
		{"-ttl", "3"}, {"-ttl", "3s"}, {"-ttl", "1m"},
		{"-scale", "2", "-scale-ttl", "60"}, {"-scale", "2", "-scale-ttl", "1h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(t.Context(), append([]string{"-target", "go=" + path, "-clients", "1", "-cycles", "1", "-warmup", "0", "-check-fds=false"}, args...), &out, &errb)
			if err != nil {
				t.Errorf("scachebench %q: %v\n%s", args, err, errb.String())
			}
		})
	}
}
