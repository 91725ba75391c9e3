package secflag

import (
	"flag"
	"io"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2", 2 * time.Second, true},
		{"0", 0, true},
		{"600", 10 * time.Minute, true},
		{"2s", 2 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"-1s", -time.Second, true}, // a Go duration; the commands check ranges
		{"-1", 0, false},
		{"1.5", 0, false},
		{"2x", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parse(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parse(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestVar(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var d time.Duration
	Var(fs, &d, "ttl", 2*time.Second, "")
	if d != 2*time.Second {
		t.Fatalf("default = %v, want 2s", d)
	}
	if err := fs.Parse([]string{"-ttl", "5"}); err != nil || d != 5*time.Second {
		t.Fatalf("-ttl 5: %v, %v", d, err)
	}
	if err := fs.Parse([]string{"-ttl", "5y"}); err == nil {
		t.Fatalf("-ttl 5y accepted")
	}
	if got := fs.Lookup("ttl").DefValue; got != "2s" {
		t.Errorf("DefValue = %q, want 2s", got)
	}
}
