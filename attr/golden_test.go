package attr_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/goscache/goscache/attr"
)

var (
	update = flag.Bool("update", false, "regenerate testdata/golden from the strace transcript")
	strace = flag.String("strace", "testdata/trace/smtp-scache-trace.full.strace", "strace transcript read by -update")
)

const goldenDir = "testdata/golden"

// straceIO matches a read or write of the real scache on a client socket
// (Postfix moves those to descriptors 128 and up).
var straceIO = regexp.MustCompile(`^\d+ (read|write)\((\d+), "((?:[^"\\]|\\.)*)"(\.\.\.)?, \d+\)\s+= (\d+)$`)

// straceChunks returns the distinct byte strings the real scache read from
// or wrote to its clients, in order of first appearance.
func straceChunks(t *testing.T, path string) (dirs []string, chunks [][]byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		m := straceIO.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if fd, _ := strconv.Atoi(m[2]); fd < 128 {
			continue
		}
		if m[4] != "" {
			t.Fatalf("strace string truncated (use -s): %s", line)
		}
		b, err := unescapeC(m[3])
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if n, _ := strconv.Atoi(m[5]); n != len(b) {
			t.Fatalf("decoded %d bytes, syscall returned %d: %s", len(b), n, line)
		}
		if seen[string(b)] {
			continue
		}
		seen[string(b)] = true
		dir := "c2s"
		if m[1] == "write" {
			dir = "s2c"
		}
		dirs = append(dirs, dir)
		chunks = append(chunks, b)
	}
	return dirs, chunks
}

// unescapeC undoes strace's C string escapes.
func unescapeC(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i++; i == len(s) {
			return nil, errors.New("trailing backslash")
		}
		switch c := s[i]; c {
		case 'x':
			if i+2 >= len(s) {
				return nil, errors.New("short \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, err
			}
			out = append(out, byte(v))
			i += 2
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'v':
			out = append(out, '\v')
		case 'f':
			out = append(out, '\f')
		case '"', '\\':
			out = append(out, c)
		default:
			if c < '0' || c > '7' {
				return nil, fmt.Errorf("unknown escape \\%c", c)
			}
			j := i
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(s[i:j], 8, 8)
			out = append(out, byte(v))
			i = j - 1
		}
	}
	return out, nil
}

// decodeAll decodes every list in b, which may hold several glued together
// (a trailing dummy and the next request arrive in one read).
func decodeAll(f attr.Format, b []byte) ([]attr.List, error) {
	d := attr.NewDecoder(bufio.NewReader(bytes.NewReader(b)), f, attr.Limits{})
	var lists []attr.List
	for {
		l, err := d.Decode()
		if errors.Is(err, io.EOF) {
			return lists, nil
		}
		if err != nil {
			return lists, err
		}
		lists = append(lists, l)
	}
}

// formatLists renders lists readably, one attribute per line.
func formatLists(lists []attr.List) string {
	var sb strings.Builder
	for i, l := range lists {
		fmt.Fprintf(&sb, "# list %d\n", i+1)
		for _, a := range l {
			if a.Kind == attr.KindTable {
				sb.WriteString("{\n")
				for _, e := range a.Table {
					fmt.Fprintf(&sb, "\t%s %s\n", strconv.Quote(e.Name), strconv.Quote(e.Value))
				}
				sb.WriteString("}\n")
				continue
			}
			fmt.Fprintf(&sb, "%s %s\n", strconv.Quote(a.Name), strconv.Quote(a.Value))
		}
	}
	return sb.String()
}

var slugRE = regexp.MustCompile(`[^a-z0-9_]+`)

func writeGolden(t *testing.T) {
	dirs, chunks := straceChunks(t, *strace)
	if len(chunks) == 0 {
		t.Fatal("no records found in the transcript")
	}
	old, _ := filepath.Glob(filepath.Join(goldenDir, "*"))
	for _, p := range old {
		os.Remove(p)
	}
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range chunks {
		lists, err := decodeAll(attr.Format0, b)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		var slug []string
		for _, l := range lists {
			if len(l) > 0 {
				slug = append(slug, slugRE.ReplaceAllString(l[0].Name+"_"+l[0].Value, ""))
			}
		}
		base := filepath.Join(goldenDir, fmt.Sprintf("%03d-%s-%s", i+1, dirs[i], strings.Join(slug, "+")))
		if err := os.WriteFile(base+".bin", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(base+".txt", []byte(formatLists(lists)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goldenVectors returns the raw vectors under testdata/golden.
func goldenVectors(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(goldenDir, "*.bin"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no golden vectors in %s (%v)", goldenDir, err)
	}
	m := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		m[strings.TrimSuffix(p, ".bin")] = b
	}
	return m
}

// TestGolden decodes every record the real scache 3.7.11 exchanged with
// smtp(8), compares it with the readable transcript, and re-encodes it
// byte for byte. It also carries each record through the other formats.
func TestGolden(t *testing.T) {
	if *update {
		writeGolden(t)
	}
	vecs := goldenVectors(t)
	glued := 0
	for base, b := range vecs {
		t.Run(filepath.Base(base), func(t *testing.T) {
			lists, err := decodeAll(attr.Format0, b)
			if err != nil {
				t.Fatal(err)
			}
			if len(lists) > 1 {
				glued++
			}
			want, err := os.ReadFile(base + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			if got := formatLists(lists); got != string(want) {
				t.Errorf("decoded lists differ from %s.txt:\ngot:\n%s\nwant:\n%s", base, got, want)
			}
			var enc []byte
			for _, l := range lists {
				enc = attr.Append(enc, l)
			}
			if !bytes.Equal(enc, b) {
				t.Errorf("re-encoding differs:\ngot  %q\nwant %q", enc, b)
			}
			for _, f := range []attr.Format{attr.FormatBase64, attr.FormatPlain} {
				if f == attr.FormatPlain && !plainSafe(lists) {
					continue // labels and properties hold newlines
				}
				var other []byte
				for _, l := range lists {
					other = attr.AppendFormat(other, f, l)
				}
				back, err := decodeAll(f, other)
				if err != nil {
					t.Fatalf("%v: %v", f, err)
				}
				if formatLists(back) != formatLists(lists) {
					t.Errorf("%v round trip:\ngot  %s\nwant %s", f, formatLists(back), formatLists(lists))
				}
			}
		})
	}
	if glued == 0 {
		t.Error("no vector holds several lists glued together; the trailing-dummy case is not covered")
	}
}

// plainSafe reports whether the plain format can carry lists: no newline
// anywhere, no '=' in names.
func plainSafe(lists []attr.List) bool {
	ok := func(a attr.Attr) bool {
		return !strings.ContainsAny(a.Name, "=\n") && !strings.Contains(a.Value, "\n")
	}
	for _, l := range lists {
		for _, a := range l {
			for _, e := range a.Table {
				if !ok(e) {
					return false
				}
			}
			if !ok(a) {
				return false
			}
		}
	}
	return true
}
