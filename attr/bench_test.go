package attr_test

import (
	"bufio"
	"io"
	"testing"

	"github.com/goscache/goscache/attr"
)

var benchReq = []byte("request\x00save_endp\x00ttl\x002\x00label\x00smtp\n127.0.0.4\n2525\n0\n\x00property\x00tls_level=0\nreuse_count=0\nendpoint_features=15\nexpire_time=1796019213\n\n\x00\x00")

// benchReader replays one request forever.
type benchReader struct{ off int }

func (r *benchReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], benchReq[r.off:])
		n += c
		r.off = (r.off + c) % len(benchReq)
	}
	return n, nil
}

func BenchmarkDecode(b *testing.B) {
	d := attr.NewDecoder(bufio.NewReader(&benchReader{}), attr.Format0, attr.Limits{})
	b.SetBytes(int64(len(benchReq)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan reads a save_endp request as scache does.
func BenchmarkScan(b *testing.B) {
	d := attr.NewDecoder(bufio.NewReader(&benchReader{}), attr.Format0, attr.Limits{})
	b.SetBytes(int64(len(benchReq)))
	b.ReportAllocs()
	var req, label, prop string
	var ttl int
	for b.Loop() {
		if _, err := d.Scan(attr.FlagStrict|attr.FlagMore, attr.WantStr("request", &req)); err != nil {
			b.Fatal(err)
		}
		if n, err := d.Scan(attr.FlagStrict, attr.WantInt("ttl", &ttl), attr.WantStr("label", &label), attr.WantStr("property", &prop)); n != 3 || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	e := attr.NewEncoder(bufio.NewWriter(io.Discard), attr.Format0)
	l := attr.List{attr.Int("status", 0), attr.Str("property", "tls_level=0\nreuse_count=0\nendpoint_features=15\nexpire_time=1796019213\n\n")}
	b.SetBytes(int64(len(attr.Append(nil, l))))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Encode(l); err != nil {
			b.Fatal(err)
		}
	}
}
