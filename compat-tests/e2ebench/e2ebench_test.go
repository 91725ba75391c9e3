package e2ebench

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func TestParseMaillog(t *testing.T) {
	lines := readLines(t, "maillog.txt")
	tests := []struct {
		name string
		got  []float64
		want []float64
	}{
		{"delay= of status=sent", Delays(lines), []float64{3.4, 3.6, 4, 6.2}},
		{"delays= b+c+d of status=sent", AfterQueueDelays(lines), []float64{0.4, 0.6, 1, 3.2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if got := Reused(lines); got != 2 {
		t.Errorf("Reused = %d, want 2 (conn_use 2 and 3; the deferred line does not count)", got)
	}
}

func TestPercentileMedian(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"p50", Percentile(v, 50), 5},
		{"p99", Percentile(v, 99), 10},
		{"p10", Percentile(v, 10), 1},
		{"p100", Percentile(v, 100), 10},
		{"empty", Percentile(nil, 50), 0},
		{"median even", Median(v), 5.5},
		{"median odd", Median([]float64{3, 1, 2}), 2},
		{"median empty", Median(nil), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestStatTicks(t *testing.T) {
	tests := []struct {
		stat    string
		want    int64
		wantErr bool
	}{
		{"1234 (scache) S 1000 1000 1000 0 -1 4194560 300 0 0 0 17 5 0 0 20 0 1 0 100 5000 200", 22, false},
		{"1234 (a (b) c) R 1000 1000 1000 0 -1 4194560 300 0 0 0 120 30 0 0 20 0 1 0 100 5000 200", 150, false},
		{"1234 (short) S 1", 0, true},
		{"no parenthesis", 0, true},
	}
	for _, tt := range tests {
		got, err := StatTicks([]byte(tt.stat))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("StatTicks(%q) = %d, %v; want %d, error %v", tt.stat, got, err, tt.want, tt.wantErr)
		}
	}
	// This process's own stat parses.
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip(err)
	}
	if _, err := StatTicks(b); err != nil {
		t.Error(err)
	}
}

func TestCPUTracker(t *testing.T) {
	var c CPUTracker
	c.Start(map[int]int64{10: 500})          // running before the run: its 500 ticks are not ours
	c.Sample(map[int]int64{10: 520})         // +20
	c.Sample(map[int]int64{11: 30})          // 10 exited (master restarted the daemon); 11 is new: +30
	c.Sample(map[int]int64{11: 70, 10: 400}) // a stale lower value never lowers the count
	secs, n := c.Seconds()
	if secs != 0.9 || n != 2 {
		t.Errorf("Seconds() = %v, %d; want 0.9 (20+70 ticks), 2", secs, n)
	}
}

func TestSummarize(t *testing.T) {
	rep, err := Read(filepath.Join("testdata", "e2e.json"))
	if err != nil {
		t.Fatal(err)
	}
	rows := Summarize(rep)
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	tests := []struct {
		way                  string
		msgs, ratio, session float64
		ratioSessions        float64
	}{
		// none: 100/50=2, 90/60=1.5, 80/40=2 msg/s -> median 2; ratios to
		// scache 2/4, 1.5/5, 2/4 -> 0.5.
		{WayNone, 2, 0.5, 100, 4},
		{WayScache, 4, 0, 25, 0},
		// goscache: 4.2, 5.5, 3.8 -> 4.2; ratios 1.05, 1.1, 0.95 -> 1.05.
		{WayGoscache, 4.2, 1.05, 24, 0.96},
	}
	for i, tt := range tests {
		r := rows[i]
		if r.Way != tt.way || !near(r.MsgsPerSec, tt.msgs) || !near(r.RatioMsgs, tt.ratio) ||
			!near(r.Sessions, tt.session) || !near(r.RatioSessions, tt.ratioSessions) {
			t.Errorf("row %d = %+v; want way %s msgs %v ratio %v sessions %v ratio %v", i, r, tt.way, tt.msgs, tt.ratio, tt.session, tt.ratioSessions)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
