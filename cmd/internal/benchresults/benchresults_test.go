package benchresults

import (
	"encoding/json"
	"testing"
	"time"
)

// TestSchema locks the JSON names that results files already on disk use
// (docs/bench/*.json): a renamed field would silently read as zero.
func TestSchema(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"empty report", Report{Started: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)},
			`{"started":"2026-12-06T00:00:00Z","go_version":"","gomaxprocs":0,"num_cpu":0,"targets":null,"fds_leaked":0}`},
		{"target", Target{Name: "floor", Socket: "/s", PID: 7}, `{"name":"floor","socket":"/s","pid":7}`},
		{"run", Run{Target: "goscache", Round: 1, Clients: 2, Cached: 3, Labels: "reuse", Rate: 4, ServerCPU: 5, CPUPerCycle: 6,
			Seconds: 7, Cycles: 8, Requests: 9, Errors: 10, CyclesPerSec: 11, RequestsPerSec: 12,
			Latency: map[string]Latency{"find_dest": {Count: 1, Mean: 2, P50: 3, P99: 4, Max: 5}}, ErrorSamples: []string{"x"}},
			`{"target":"goscache","round":1,"clients":2,"cached":3,"labels":"reuse","rate":4,"server_cpu_s":5,"server_cpu_per_cycle_us":6,` +
				`"seconds":7,"cycles":8,"requests":9,"errors":10,"cycles_per_sec":11,"requests_per_sec":12,` +
				`"latency":{"find_dest":{"count":1,"mean_ns":2,"p50_ns":3,"p99_ns":4,"max_ns":5}},"error_samples":["x"]}`},
		{"memory", MemSample{Target: "scache", Cached: 1, RSSKB: 2}, `{"target":"scache","cached":1,"rss_kb":2}`},
		{"heap", HeapSample{Cached: 1, HeapBytes: 2, BytesPerConn: 3, PayloadPerConn: 4},
			`{"cached":1,"heap_bytes":2,"bytes_per_conn":3,"payload_per_conn":4}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
