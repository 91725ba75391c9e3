package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
)

// reqKind is one step of the smtp(8) cycle, timed on its own.
type reqKind int

const (
	kindFindDestMiss reqKind = iota // find_dest, nothing cached
	kindFindEndpMiss                // find_endp, nothing cached
	kindSaveDest                    // save_dest
	kindSaveEndp                    // save_endp with its descriptor
	kindFindDestHit                 // find_dest hit, descriptor back
	numKinds
)

var reqKinds = []reqKind{kindFindDestMiss, kindFindEndpMiss, kindSaveDest, kindSaveEndp, kindFindDestHit}

func (k reqKind) String() string {
	switch k {
	case kindFindDestMiss:
		return "find_dest_miss"
	case kindFindEndpMiss:
		return "find_endp_miss"
	case kindSaveDest:
		return "save_dest"
	case kindSaveEndp:
		return "save_endp"
	case kindFindDestHit:
		return "find_dest_hit"
	}
	return "kind" + strconv.Itoa(int(k))
}

// Properties shaped like the ones smtp(8) sends (PROTOCOL.md §5.3).
const (
	benchEndpProp = "tls_level=0\nreuse_count=0\nendpoint_features=15\nexpire_time=1700000300\n\n"
	benchDestHost = "\nhost_name=mx.bench.test\nhost_addr=127.0.0.1\ndestination_features=4096\n\n"
)

// Label modes of the cycle (-labels).
const (
	// labelsFresh gives every cycle of every client labels of its own, so
	// that the server's cache grows by one binding per cycle (until the
	// bindings expire after ttl).
	labelsFresh = "fresh"
	// labelsReuse has each client cycle through a small fixed set of
	// destinations (loadSpec.dests), as at a site that sends mostly to a few
	// big providers: the cache stays small, each save_dest refreshes a
	// binding that exists.
	labelsReuse = "reuse"
)

// loadSpec is one measurement: clients concurrent connections running the
// cycle against target.
type loadSpec struct {
	target   benchTarget
	clients  int
	warmup   time.Duration
	duration time.Duration
	cycles   int // per client, instead of duration
	ttl      time.Duration
	timeout  time.Duration
	cached   int    // connections cached beforehand (scale runs), for the report
	labels   string // labelsFresh ("" too) or labelsReuse
	dests    int    // destinations per client with labelsReuse
	// rate, if positive, makes the run open-loop: rate cycles per second
	// in all, each client starting its cycles on a fixed schedule
	// (clients/rate apart) whatever the server's answers, and latencies
	// counted from the scheduled start.
	rate float64
}

// maxErrorSamples bounds the error messages kept per run.
const maxErrorSamples = 5

// worker is one client connection running the cycle. It owns a
// socketpair whose first end it caches again and again: the server gets
// a new descriptor for the same socket each time and hands one back.
type worker struct {
	spec    *loadSpec
	id      int
	prefix  string // unique per run
	cl      *client.Client
	pair    [2]int
	dev     uint64
	ino     uint64
	iter    int
	lat     [numKinds + 1][]int64 // + whole cycles
	cycles  int
	errors  int
	samples []string
	label   []byte
	set     []cycleLabels // labelsReuse: the client's destinations
}

// cycleLabels are the labels and destination property of one cycle.
type cycleLabels struct {
	dest, endp, destProp string
}

// kindCycle indexes the whole-cycle latencies in worker.lat.
const kindCycle = numKinds

func newWorker(spec *loadSpec, id int, prefix string) (*worker, error) {
	w := &worker{spec: spec, id: id, prefix: prefix, pair: [2]int{-1, -1}}
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("bench: socketpair: %w", err)
	}
	w.pair = [2]int{p[0], p[1]}
	var st unix.Stat_t
	if err := unix.Fstat(p[0], &st); err != nil {
		w.close()
		return nil, fmt.Errorf("bench: fstat: %w", err)
	}
	w.dev, w.ino = st.Dev, st.Ino
	if spec.labels == labelsReuse {
		for i := range max(spec.dests, 1) {
			w.iter = i
			w.set = append(w.set, w.freshLabels())
		}
		w.iter = 0
	}
	return w, nil
}

// dial (re)connects to the target.
func (w *worker) dial(ctx context.Context) error {
	w.hangUp()
	cl, err := dialTarget(ctx, w.spec.target, w.spec.timeout)
	if err != nil {
		return err
	}
	w.cl = cl
	return nil
}

// dialTarget connects to t with client.Dial, the connect bounded by
// timeout, and sets timeout on the client's requests.
func dialTarget(ctx context.Context, t benchTarget, timeout time.Duration) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := client.Dial(ctx, t.Socket)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", t.Name, err)
	}
	cl.Timeout = timeout
	return cl, nil
}

func (w *worker) hangUp() {
	if w.cl != nil {
		w.cl.Close()
		w.cl = nil
	}
}

func (w *worker) close() {
	w.hangUp()
	for i, fd := range w.pair {
		if fd >= 0 {
			unix.Close(fd)
			w.pair[i] = -1
		}
	}
}

func (w *worker) fail(err error) {
	w.errors++
	if len(w.samples) < maxErrorSamples {
		w.samples = append(w.samples, err.Error())
	}
}

// labels returns this iteration's labels: with labelsReuse the next of
// the client's fixed set (the previous cycle on it took its session back,
// so the cycle's first lookups still miss), otherwise labels of its own.
func (w *worker) labels() cycleLabels {
	if len(w.set) > 0 {
		return w.set[w.iter%len(w.set)]
	}
	return w.freshLabels()
}

// freshLabels returns labels unique per run, client and iteration, so
// that every lookup has the outcome the cycle expects, on any server.
func (w *worker) freshLabels() cycleLabels {
	b := w.label[:0]
	b = append(b, "smtp\n"...)
	b = append(b, w.prefix...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(w.id), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(w.iter), 10)
	b = append(b, ".bench.test\n"...)
	dest := string(b)
	b = append(b[:0], "smtp\n127.0.0.1\n25\n"...)
	b = append(b, w.prefix...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(w.id), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(w.iter), 10)
	b = append(b, '\n')
	endp := string(b)
	w.label = b
	return cycleLabels{dest, endp, "destination=" + dest[5:len(dest)-1] + benchDestHost}
}

// cycle runs smtp(8)'s sequence once: find_dest miss, find_endp miss,
// save_dest, save_endp with a descriptor, find_dest hit with the
// descriptor back. It records latencies when record is set, each one
// lengthened by lag: how late the cycle started on an open-loop schedule.
// A transport error is returned (the connection is then unusable); a wrong
// answer is counted as an error and the cycle goes on where it can.
func (w *worker) cycle(record bool, lag time.Duration) error {
	w.iter++
	l := w.labels()
	dest, endp, destProp := l.dest, l.endp, l.destProp
	ttl := w.spec.ttl
	var t [numKinds + 1]time.Time
	t[0] = time.Now()

	res, err := w.cl.FindDest(dest)
	t[1] = time.Now()
	if err != nil {
		return fmt.Errorf("find_dest: %w", err)
	}
	w.expectMiss("find_dest", res)

	res, err = w.cl.FindEndp(endp)
	t[2] = time.Now()
	if err != nil {
		return fmt.Errorf("find_endp: %w", err)
	}
	w.expectMiss("find_endp", res)

	st, err := w.cl.SaveDest(dest, destProp, endp, ttl)
	t[3] = time.Now()
	if err != nil {
		return fmt.Errorf("save_dest: %w", err)
	}
	if st != scache.StatusOK {
		w.fail(fmt.Errorf("save_dest: status %d", st))
	}

	st, err = w.cl.SaveEndp(endp, benchEndpProp, w.pair[0], ttl)
	t[4] = time.Now()
	if err != nil {
		return fmt.Errorf("save_endp: %w", err)
	}
	if st != scache.StatusOK {
		w.fail(fmt.Errorf("save_endp: status %d", st))
	}

	res, err = w.cl.FindDest(dest)
	fd, dp, ep, st := res.FD, res.DestProp, res.EndpProp, res.Status
	t[5] = time.Now()
	if fd >= 0 {
		var s unix.Stat_t
		if serr := unix.Fstat(fd, &s); serr != nil || s.Dev != w.dev || s.Ino != w.ino {
			w.fail(errors.New("find_dest hit: the descriptor received is not the one cached"))
		}
		unix.Close(fd)
	}
	if err != nil {
		return fmt.Errorf("find_dest hit: %w", err)
	}
	switch {
	case st != scache.StatusOK:
		w.fail(fmt.Errorf("find_dest of a saved label: status %d, want %d", st, scache.StatusOK))
	case fd < 0:
		w.fail(errors.New("find_dest hit without a descriptor"))
	case dp != destProp || ep != benchEndpProp:
		w.fail(fmt.Errorf("find_dest hit: properties %q %q, want %q %q", dp, ep, destProp, benchEndpProp))
	}
	if record {
		for k := range numKinds {
			w.lat[k] = append(w.lat[k], int64(t[k+1].Sub(t[k])+lag))
		}
		w.lat[kindCycle] = append(w.lat[kindCycle], int64(t[numKinds].Sub(t[0])+lag))
		w.cycles++
	}
	return nil
}

// expectMiss checks the answer to a find of a label the cycle has not
// saved: it closes the descriptor, if one came, and counts any status but
// StatusFail as an error.
func (w *worker) expectMiss(req string, res client.Result) {
	if res.FD >= 0 {
		unix.Close(res.FD)
	}
	if res.Status != scache.StatusFail {
		w.fail(fmt.Errorf("%s of a new label: status %d, want %d", req, res.Status, scache.StatusFail))
	}
}

// loop runs cycles: unrecorded until warmEnd, then recorded until end (or
// for spec.cycles cycles). It reconnects after a transport error. It
// returns when it finished.
//
// Open-loop (spec.rate > 0), the client's cycles are scheduled every
// clients/rate from start, this client's first one offset by its share of
// that interval. A cycle waits for its scheduled time, and one that starts
// late (the previous cycle took too long) records every latency lengthened
// by its lateness: latency counts from the scheduled start, so a slow
// server cannot lower its own offered load. Whether a cycle is recorded
// depends on its scheduled time.
func (w *worker) loop(ctx context.Context, start, warmEnd, end time.Time) time.Time {
	recorded := 0
	var interval time.Duration
	var next time.Time
	if w.spec.rate > 0 {
		interval = time.Duration(float64(w.spec.clients) / w.spec.rate * float64(time.Second))
		next = start.Add(interval * time.Duration(w.id) / time.Duration(w.spec.clients))
	}
	for ctx.Err() == nil {
		now := time.Now()
		var lag time.Duration
		if interval > 0 {
			if wait := next.Sub(now); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return time.Now()
				}
			} else {
				lag = -wait
			}
			now = next
			next = next.Add(interval)
		}
		record := !now.Before(warmEnd)
		if record {
			if w.spec.cycles > 0 && recorded >= w.spec.cycles {
				break
			}
			if w.spec.cycles == 0 && !now.Before(end) {
				break
			}
		}
		if w.cl == nil {
			if err := w.dial(ctx); err != nil {
				w.fail(err)
				time.Sleep(10 * time.Millisecond)
				if w.spec.cycles > 0 {
					recorded++ // a dead server must not make -cycles run forever
				}
				continue
			}
		}
		if err := w.cycle(record, lag); err != nil {
			w.fail(fmt.Errorf("%s: %w", w.spec.target.Name, err))
			w.hangUp()
		}
		if record {
			recorded++
		}
	}
	return time.Now()
}

// runLoad measures one loadSpec.
func runLoad(ctx context.Context, spec loadSpec) (runResult, error) {
	res := runResult{Target: spec.target.Name, Clients: spec.clients, Cached: spec.cached, Rate: spec.rate}
	if spec.labels == labelsReuse {
		res.Labels = labelsReuse
	}
	prefix := strconv.FormatInt(int64(os.Getpid()), 36) + "." + strconv.FormatInt(time.Now().UnixNano(), 36)
	workers := make([]*worker, 0, spec.clients)
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	for i := range spec.clients {
		w, err := newWorker(&spec, i, prefix)
		if err != nil {
			return res, err
		}
		workers = append(workers, w)
		if err := w.dial(ctx); err != nil {
			return res, err
		}
	}
	start := time.Now()
	warmEnd := start.Add(spec.warmup)
	end := warmEnd.Add(spec.duration)
	finish := make([]time.Time, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { finish[i] = w.loop(ctx, start, warmEnd, end) })
	}
	// The server's CPU time over the measured part: from the end of the
	// warm-up to the end of the last client.
	cpu0 := make(chan float64, 1)
	go func() {
		time.Sleep(time.Until(warmEnd))
		cpu0 <- processCPU(spec.target.PID)
	}()
	wg.Wait()
	if c0, c1 := <-cpu0, processCPU(spec.target.PID); c0 >= 0 && c1 >= c0 {
		res.ServerCPU = c1 - c0
	}
	last := warmEnd
	for _, f := range finish {
		if f.After(last) {
			last = f
		}
	}
	res.Seconds = last.Sub(warmEnd).Seconds()
	tally(&res, workers)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Cycles == 0 {
		return res, fmt.Errorf("bench: %s: no cycle completed", spec.target.Name)
	}
	return res, nil
}

// tally adds up the workers' cycles, errors and latencies into res, whose
// ServerCPU and Seconds are known.
func tally(res *runResult, workers []*worker) {
	var all [numKinds + 1][]int64
	for _, w := range workers {
		res.Cycles += w.cycles
		res.Errors += w.errors
		for _, s := range w.samples {
			if len(res.ErrorSamples) < maxErrorSamples {
				res.ErrorSamples = append(res.ErrorSamples, s)
			}
		}
		for k := range all {
			all[k] = append(all[k], w.lat[k]...)
		}
	}
	res.Requests = res.Cycles * int(numKinds)
	if res.Cycles > 0 && res.ServerCPU > 0 {
		res.CPUPerCycle = res.ServerCPU / float64(res.Cycles) * 1e6
	}
	if res.Seconds > 0 {
		res.CyclesPerSec = float64(res.Cycles) / res.Seconds
		res.RequestsPerSec = float64(res.Requests) / res.Seconds
	}
	res.Latency = make(map[string]latStats, len(all)+1)
	var reqs []int64 // every request, whatever its kind
	for k := range numKinds {
		reqs = append(reqs, all[k]...)
	}
	res.Latency["request"] = summarize(reqs)
	for k := range all {
		name := "cycle"
		if reqKind(k) < numKinds {
			name = reqKind(k).String()
		}
		res.Latency[name] = summarize(all[k])
	}
}

// summarize sorts s and returns its statistics (nearest-rank percentiles).
func summarize(s []int64) latStats {
	if len(s) == 0 {
		return latStats{}
	}
	slices.Sort(s)
	var sum int64
	for _, v := range s {
		sum += v
	}
	return latStats{
		Count: len(s), Mean: sum / int64(len(s)),
		P50: percentile(s, 50), P99: percentile(s, 99), Max: s[len(s)-1],
	}
}

// percentile returns the nearest-rank p-th percentile of sorted s.
func percentile(s []int64, p int) int64 {
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// processCPU returns the user and system CPU time, in seconds, that process
// pid has used so far (all its threads, living and exited), or -1 when
// pid is 0 or unknown.
func processCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// fields count from after its closing one. utime and stime are fields
	// 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(ut+st) / clockTicks
}

// fdSet is a snapshot of this process's descriptors: number -> what
// /proc/self/fd says it is ("socket:[123]", "pipe:[45]", a path).
type fdSet map[int]string

// openFDs returns a snapshot of this process's descriptors, or nil.
func openFDs() fdSet {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil
	}
	defer dir.Close()
	self := int(dir.Fd())
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil
	}
	s := make(fdSet, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == self {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + name); err == nil {
			s[fd] = target
		}
	}
	return s
}

// runtimeFD reports whether a descriptor is one the Go runtime opens for
// itself, on first need: the netpoller's epoll instance and its wake-up
// eventfd. The bench never opens either.
func runtimeFD(target string) bool {
	return target == "anon_inode:[eventpoll]" || target == "anon_inode:[eventfd]"
}

// leakedFDs returns the descriptors open now that were not open (as the
// same thing) in before, other than the runtime's own: the ones the bench
// opened and did not close. It waits up to a second for the count to
// settle, since in-process servers close their side of a connection
// shortly after the client does.
func leakedFDs(before fdSet) []string {
	for i := 0; ; i++ {
		now := openFDs()
		var fds []int
		for fd, target := range now {
			if before[fd] != target && !runtimeFD(target) {
				fds = append(fds, fd)
			}
		}
		if len(fds) == 0 {
			return nil
		}
		if i < 100 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		slices.Sort(fds)
		leaked := make([]string, len(fds))
		for j, fd := range fds {
			leaked[j] = strconv.Itoa(fd) + " " + now[fd]
		}
		return leaked
	}
}
