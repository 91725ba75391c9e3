package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/server"
)

// inprocSocket is the -target path that starts goscache's Server in this
// process.
const inprocSocket = "inproc"

// startInproc starts an in-process server.Server for each target whose
// socket is "inproc" and returns the targets with real socket paths, and a
// function that stops the servers.
func startInproc(ctx context.Context, targets []benchTarget, ttl, scaleTTL time.Duration) ([]benchTarget, func(), error) {
	out := slices.Clone(targets)
	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
	}
	for i, t := range out {
		if t.Socket != inprocSocket {
			continue
		}
		path, f, err := startServer(max(ttl, scaleTTL))
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, f)
		out[i].Socket = path
		out[i].PID = os.Getpid()
	}
	return out, stop, nil
}

// startServer runs goscache's Server on a socket in a new temporary
// directory. The returned function closes it and removes the directory.
func startServer(ttlLimit time.Duration) (string, func(), error) {
	dir, err := os.MkdirTemp("", "scachebench-")
	if err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	path := filepath.Join(dir, "scache")
	l, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	// No limits: the scale run measures what holding n connections costs.
	srv := server.New(server.Options{TTLLimit: ttlLimit, MaxSessions: -1, MaxConns: -1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l) // returns when the stop function closes the server
	}()
	return path, func() {
		srv.Close()
		l.Close()
		<-done
		os.RemoveAll(dir)
	}, nil
}

// raiseNoFile raises RLIMIT_NOFILE to what the scale and heap runs need
// (in-process servers hold their cached descriptors in this process). Go
// already raised the soft limit to the hard one; root may raise the hard
// limit too, up to fs.nr_open.
func raiseNoFile(cfg benchConfig) {
	need := 0
	for _, n := range slices.Concat(cfg.scale, cfg.heap) {
		need = max(need, n)
	}
	need += 4096
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil || lim.Cur >= uint64(need) {
		return
	}
	if lim.Max < uint64(need) {
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
				lim.Max = max(lim.Max, min(n, uint64(need)))
			}
		}
	}
	lim.Cur = min(lim.Max, max(lim.Cur, uint64(need)))
	_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) // best effort: a run that needs more descriptors than allowed fails with EMFILE
}

// filler caches connections in a server: save_dest then save_endp, as
// smtp(8) does, with unique labels and a long ttl. One socket is cached
// again and again; the server holds a descriptor for each entry.
type filler struct {
	target benchTarget
	ttl    time.Duration
	tag    string // keeps the labels of one filler apart from another's
	conns  []*client.Client
	pair   [2]int
	filled int
}

func newFiller(ctx context.Context, t benchTarget, n int, ttl, timeout time.Duration) (*filler, error) {
	f := &filler{target: t, ttl: ttl, pair: [2]int{-1, -1},
		tag: strconv.FormatInt(time.Now().UnixNano()%(36*36*36), 36)}
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("bench: socketpair: %w", err)
	}
	f.pair = [2]int{p[0], p[1]}
	for range n {
		cl, err := dialTarget(ctx, t, timeout)
		if err != nil {
			f.close()
			return nil, err
		}
		f.conns = append(f.conns, cl)
	}
	return f, nil
}

func (f *filler) close() {
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
	for i, fd := range f.pair {
		if fd >= 0 {
			unix.Close(fd)
			f.pair[i] = -1
		}
	}
}

// fillTo caches entries until the server holds n of ours.
func (f *filler) fillTo(n int) error {
	if n <= f.filled {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(f.conns))
	for i, c := range f.conns {
		wg.Go(func() {
			for k := f.filled + i; k < n; k += len(f.conns) {
				dest, destProp, endp := fillEntry(f.tag, k)
				if st, err := c.SaveDest(dest, destProp, endp, f.ttl); err != nil || st != scache.StatusOK {
					errs[i] = fmt.Errorf("bench: %s: fill save_dest: status %d: %v", f.target.Name, st, err)
					return
				}
				if st, err := c.SaveEndp(endp, fillEndpProp, f.pair[0], f.ttl); err != nil || st != scache.StatusOK {
					errs[i] = fmt.Errorf("bench: %s: fill save_endp: status %d: %v", f.target.Name, st, err)
					return
				}
			}
		})
	}
	wg.Wait()
	f.filled = n
	// The workers fail for one cause (the server went away or refused),
	// so the first error says it; the bench stops there.
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// fillEndpProp is an endpoint property as smtp(8) writes it (PROTOCOL.md
// §1.8).
const fillEndpProp = "tls_level=1\nreuse_count=0\nendpoint_features=32783\nexpire_time=1700000300\n\n"

// fillEntry returns the k-th destination label, its property and its
// endpoint label, shaped and sized like smtp(8)'s (PROTOCOL.md §1.8):
// "smtp\nd42x1.com\n", "destination=d42x1.com\nhost_name=mx1.d42x1.com\n...",
// "smtp\n10.0.0.42\n25\nx1\n".
func fillEntry(tag string, k int) (dest, destProp, endp string) {
	domain := "d" + strconv.Itoa(k) + tag + ".com"
	addr := "10." + strconv.Itoa(k>>16&255) + "." + strconv.Itoa(k>>8&255) + "." + strconv.Itoa(k&255)
	if k>>24 != 0 {
		addr += "." + strconv.Itoa(k>>24) // still unique past 16M
	}
	dest = "smtp\n" + domain + "\n"
	destProp = "destination=" + domain + "\nhost_name=mx1." + domain + "\nhost_addr=" + addr + "\ndestination_features=4096\n\n"
	endp = "smtp\n" + addr + "\n25\n" + tag + "\n"
	return dest, destProp, endp
}

// runScale fills every target to each level of cfg.scale in turn and
// measures one client running the cycle there, cfg.rounds times, targets
// interleaved. It samples the VmRSS of targets whose PID is known.
func runScale(ctx context.Context, cfg benchConfig, targets []benchTarget, rep *benchReport, progress io.Writer) error {
	fillers := make([]*filler, len(targets))
	defer func() {
		for _, f := range fillers {
			if f != nil {
				f.close()
			}
		}
	}()
	for i, t := range targets {
		f, err := newFiller(ctx, t, cfg.scaleFill, cfg.scaleTTL, cfg.timeout)
		if err != nil {
			return err
		}
		fillers[i] = f
		if rss, ok := readRSS(t.PID); ok {
			rep.Memory = append(rep.Memory, memSample{Target: t.Name, Cached: 0, RSSKB: rss})
		}
	}
	k := 0
	for _, level := range cfg.scale {
		for i, t := range targets {
			start := time.Now()
			if err := fillers[i].fillTo(level); err != nil {
				return err
			}
			fmt.Fprintf(progress, "scale %-10s filled to %d in %v\n", t.Name, level, time.Since(start).Round(time.Millisecond))
			if rss, ok := readRSS(t.PID); ok {
				rep.Memory = append(rep.Memory, memSample{Target: t.Name, Cached: level, RSSKB: rss})
			}
		}
		for round := 1; round <= cfg.rounds; round++ {
			for j := range targets {
				t := targets[(j+k)%len(targets)]
				res, err := runLoad(ctx, loadSpec{
					target: t, clients: 1, warmup: cfg.warmup, duration: cfg.duration,
					cycles: cfg.cycles, ttl: cfg.ttl, timeout: cfg.timeout, cached: level,
				})
				res.Round = round
				rep.Scale = append(rep.Scale, res)
				if err != nil {
					return err
				}
				fmt.Fprintf(progress, "scale round %d %-10s cached=%-6d %9.0f requests/s  errors=%d\n", round, t.Name, level, res.RequestsPerSec, res.Errors)
			}
			k++
		}
	}
	return nil
}

// readRSS returns the VmRSS of process pid in kB.
func readRSS(pid int) (int, bool) {
	if pid <= 0 {
		return 0, false
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n, err == nil
		}
	}
	return 0, false
}

// measureHeap starts goscache's Server in this process and measures the Go
// heap it holds with each number of connections in cfg.heap cached (a
// destination binding and a session each, as smtp(8) leaves them).
func measureHeap(ctx context.Context, cfg benchConfig, progress io.Writer) ([]heapSample, error) {
	path, stop, err := startServer(cfg.scaleTTL)
	if err != nil {
		return nil, err
	}
	defer stop()
	f, err := newFiller(ctx, benchTarget{Name: "inproc", Socket: path}, cfg.scaleFill, cfg.scaleTTL, cfg.timeout)
	if err != nil {
		return nil, err
	}
	defer f.close()
	base := liveHeap()
	var out []heapSample
	for _, n := range cfg.heap {
		if err := f.fillTo(n); err != nil {
			return out, err
		}
		h := liveHeap() - base
		payload := 0
		for k := range n {
			dest, destProp, endp := fillEntry(f.tag, k)
			payload += len(dest) + len(destProp) + len(endp) + len(fillEndpProp)
		}
		s := heapSample{Cached: n, HeapBytes: h, BytesPerConn: float64(h) / float64(n), PayloadPerConn: float64(payload) / float64(n)}
		out = append(out, s)
		fmt.Fprintf(progress, "heap cached=%d %.1f bytes/conn (labels and properties: %.1f)\n", n, s.BytesPerConn, s.PayloadPerConn)
	}
	if cfg.memProfile != "" {
		if err := writeHeapProfile(cfg.memProfile); err != nil {
			return out, err
		}
	}
	return out, nil
}

// liveHeap returns HeapAlloc after a full collection.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// writeHeapProfile writes a pprof heap profile after a collection.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: %w", err)
	}
	return f.Close()
}
