// Package benchresults is the JSON schema of the benchmark results: what
// "scachebench -json" writes and cmd/benchplot reads, defined once.
package benchresults

import "time"

// Report is the -json output of one bench invocation.
type Report struct {
	Started    time.Time    `json:"started"`
	GoVersion  string       `json:"go_version"`
	GOMAXPROCS int          `json:"gomaxprocs"`
	NumCPU     int          `json:"num_cpu"`
	Targets    []Target     `json:"targets"`
	Runs       []Run        `json:"runs,omitempty"`
	Scale      []Run        `json:"scale,omitempty"`
	Memory     []MemSample  `json:"memory,omitempty"`
	Heap       []HeapSample `json:"heap,omitempty"`
	FDsLeaked  int          `json:"fds_leaked"`
}

// Target is one server under test.
type Target struct {
	Name   string `json:"name"`
	Socket string `json:"socket"`
	PID    int    `json:"pid,omitempty"` // for VmRSS; 0 = unknown
}

// Latency summarises the latencies of one request kind, in nanoseconds.
type Latency struct {
	Count int   `json:"count"`
	Mean  int64 `json:"mean_ns"`
	P50   int64 `json:"p50_ns"`
	P99   int64 `json:"p99_ns"`
	Max   int64 `json:"max_ns"`
}

// Run is the outcome of one load run.
type Run struct {
	Target  string  `json:"target"`
	Round   int     `json:"round"`
	Clients int     `json:"clients"`
	Cached  int     `json:"cached,omitempty"`
	Labels  string  `json:"labels,omitempty"`
	Rate    float64 `json:"rate,omitempty"` // offered cycles/s of an open-loop run
	// ServerCPU is the CPU time (user and system, from /proc/PID/stat) the
	// target's server process used while the run was measured, in seconds;
	// zero when its pid is not known. CPUPerCycle is ServerCPU/Cycles in
	// microseconds.
	ServerCPU      float64            `json:"server_cpu_s,omitempty"`
	CPUPerCycle    float64            `json:"server_cpu_per_cycle_us,omitempty"`
	Seconds        float64            `json:"seconds"`
	Cycles         int                `json:"cycles"`
	Requests       int                `json:"requests"`
	Errors         int                `json:"errors"`
	CyclesPerSec   float64            `json:"cycles_per_sec"`
	RequestsPerSec float64            `json:"requests_per_sec"`
	Latency        map[string]Latency `json:"latency"`
	ErrorSamples   []string           `json:"error_samples,omitempty"`
}

// MemSample is a server's resident memory with a number of connections
// cached.
type MemSample struct {
	Target string `json:"target"`
	Cached int    `json:"cached"`
	RSSKB  int    `json:"rss_kb"`
}

// HeapSample is the Go heap of an in-process goscache Server with Cached
// connections cached (each with its destination binding).
type HeapSample struct {
	Cached       int     `json:"cached"`
	HeapBytes    int64   `json:"heap_bytes"` // HeapAlloc after GC, minus the empty server's
	BytesPerConn float64 `json:"bytes_per_conn"`
	// PayloadPerConn is the mean length of the labels and properties sent
	// per connection (destination label and property, endpoint label and
	// property): the part of BytesPerConn no data structure can avoid
	// (absent from older results).
	PayloadPerConn float64 `json:"payload_per_conn"`
}
