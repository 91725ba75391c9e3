package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goscache/goscache/scache/fdtest"
	"github.com/goscache/goscache/scache/scachetest"
	"github.com/goscache/goscache/scache/server"
)

// checkLogLines fails t unless every line of out starts with tag and holds
// nothing but printable ASCII before its newline. out must end with a
// newline: a log line is written whole.
func checkLogLines(t *testing.T, out, tag string) {
	t.Helper()
	if out == "" {
		return
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("log does not end with a newline: %q", out)
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(line, tag) {
			t.Errorf("line does not start with %q: %q", tag, line)
		}
		for i := 0; i < len(line); i++ {
			if ch := line[i]; ch < 0x20 || ch >= 0x7f {
				t.Errorf("byte %#x at %d in line %q", ch, i, line)
				break
			}
		}
	}
}

// TestLogPath_forgedRequest sends the request name of the issue report:
// the newline must not start a line of its own.
func TestLogPath_forgedRequest(t *testing.T) {
	logs := new(fdtest.SyncBuffer)
	ts := scachetest.NewServer(t, server.Options{Logger: newLogger(logs, true)})
	nc := ts.Raw(t)
	if _, err := nc.Write([]byte("request\x00x\npostfix/scache[1]: fatal: FORGED LINE\x00\x00")); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, len("status\x001\x00\x00"))
	if _, err := io.ReadFull(nc, reply); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	tag := "postfix/scache[" + strconv.Itoa(os.Getpid()) + "]: "
	out := logs.String()
	checkLogLines(t, out, tag)
	want := tag + `warning: unrecognized request: "x?postfix/scache[1]: fatal: FORGED LINE", ignored` + "\n"
	if !strings.Contains(out, want) {
		t.Errorf("log lacks %q:\n%s", want, out)
	}
}

// FuzzLogPath feeds arbitrary client bytes to a server that logs through
// the daemon's own handler at debug level (-v: request traces with their
// key=value details included): no line may contain a byte outside
// printable ASCII but its newline, and every line starts with the tag.
//
// The lines are checked as the handler writes them (lineCheck), not kept:
// a buffer of everything logged, copied after every input to check its
// new part, grew with every execution and slowed the target to a few
// hundred executions a second (issue 17 §3). A line the server logs after
// the client saw the connection end ("connection closed") is checked when
// it is written and reported at the next input.
func FuzzLogPath(f *testing.F) {
	for _, s := range []string{
		"request\x00x\npostfix/scache[1]: fatal: FORGED LINE\x00\x00",
		"request\x00find_dest\x00label\x00smtp\n\xff\x1b[2J\x00\x00",
		"request\x00find_endp\x00label\x00caf\xc3\xa9\r\n\x00\x00",
		"request\x00save_dest\x00ttl\x002\x00label\x00d\n\x00property\x00p\t\x00label\x00e\x01\x00\x00",
		"request\x00save_endp\x00ttl\x00x\n\x00label\x00e\x00property\x00p\x00\x00",
		"req\nuest\x00find_dest\x00\x00",
		"request\x00find_dest\x00la\x7fbel\x00x\x00\x00",
	} {
		f.Add([]byte(s))
	}
	lc := &lineCheck{tag: "postfix/scache[" + strconv.Itoa(os.Getpid()) + "]: "}
	ts := scachetest.NewServer(f, server.Options{Logger: newLogger(lc, true), IPCTimeout: 5 * time.Second})
	f.Fuzz(func(t *testing.T, in []byte) {
		nc := ts.Raw(t)
		if _, err := nc.Write(in); err != nil {
			return
		}
		nc.CloseWrite()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Fatalf("the server did not end the connection: %v", err)
		}
		if bad := lc.first(); bad != "" {
			t.Fatal(bad)
		}
	})
}

// lineCheck is the log's writer in FuzzLogPath: it checks every write as
// checkLogLines would (whole lines, each starting with tag, printable
// ASCII but the newline) and keeps the first violation, not the log.
type lineCheck struct {
	tag string
	mu  sync.Mutex
	bad string
}

func (c *lineCheck) Write(p []byte) (int, error) {
	var why string
	out := string(p)
	if !strings.HasSuffix(out, "\n") {
		why = fmt.Sprintf("log write does not end with a newline: %q", out)
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if why != "" {
			break
		}
		if !strings.HasPrefix(line, c.tag) {
			why = fmt.Sprintf("line does not start with %q: %q", c.tag, line)
		}
		for i := 0; i < len(line) && why == ""; i++ {
			if ch := line[i]; ch < 0x20 || ch >= 0x7f {
				why = fmt.Sprintf("byte %#x at %d in line %q", ch, i, line)
			}
		}
	}
	if why != "" {
		c.mu.Lock()
		if c.bad == "" {
			c.bad = why
		}
		c.mu.Unlock()
	}
	return len(p), nil
}

// first returns the first violation seen, or "".
func (c *lineCheck) first() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad
}

// TestLineCheck: FuzzLogPath's checker finds what checkLogLines finds.
func TestLineCheck(t *testing.T) {
	const tag = "postfix/scache[1]: "
	for _, tc := range []struct {
		name, write string
		bad         bool
	}{
		{"good", tag + "warning: x\n", false},
		{"two good lines", tag + "a\n" + tag + "b\n", false},
		{"no newline", tag + "a", true},
		{"no tag", "fatal: x\n", true},
		{"second line forged", tag + "a\nfatal: x\n", true},
		{"control byte", tag + "a\x1b[2J\n", true},
		{"high byte", tag + "caf\xc3\xa9\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &lineCheck{tag: tag}
			if n, err := c.Write([]byte(tc.write)); n != len(tc.write) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if got := c.first() != ""; got != tc.bad {
				t.Errorf("violation %v (%q), want %v", got, c.first(), tc.bad)
			}
		})
	}
}
