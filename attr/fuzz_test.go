package attr_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/attr"
)

var formats = []attr.Format{attr.Format0, attr.FormatBase64, attr.FormatPlain}

// fuzzLimits are small so that the fuzzer reaches them.
var fuzzLimits = attr.Limits{MaxString: 64, MaxAttrs: 16, MaxTable: 4}

// seed adds every golden vector, converted to each format, plus a few
// hand-made edge cases.
func seed(f *testing.F) {
	for _, b := range goldenVectors(f) {
		lists, err := decodeAll(attr.Format0, b)
		if err != nil {
			f.Fatal(err)
		}
		for i, fm := range formats {
			var enc []byte
			for _, l := range lists {
				enc = attr.AppendFormat(enc, fm, l)
			}
			f.Add(byte(i), enc)
		}
	}
	f.Add(byte(0), []byte("{\x00k\x00v\x00}\x00\x00"))
	f.Add(byte(1), []byte("ew==\naw==:dg==\nfQ==\n\n"))
	f.Add(byte(2), []byte("{\x00\nk=v\n}\x00\n\n"))
}

func fuzzFormat(b byte) attr.Format { return formats[int(b)%len(formats)] }

// checkLimits fails if a decoded list breaks fuzzLimits. MaxString bounds
// the encoded text, which for base64 is 4/3 of the decoded bytes.
func checkLimits(t *testing.T, l attr.List) {
	t.Helper()
	if len(l) > fuzzLimits.MaxAttrs {
		t.Fatalf("%d attributes, limit %d", len(l), fuzzLimits.MaxAttrs)
	}
	check := func(a attr.Attr) {
		if len(a.Name) > fuzzLimits.MaxString || len(a.Value) > fuzzLimits.MaxString {
			t.Fatalf("string longer than %d: %q=%q", fuzzLimits.MaxString, a.Name, a.Value)
		}
	}
	for _, a := range l {
		if a.Kind == attr.KindTable {
			if len(a.Table) > fuzzLimits.MaxTable {
				t.Fatalf("table of %d entries, limit %d", len(a.Table), fuzzLimits.MaxTable)
			}
			for _, e := range a.Table {
				check(e)
			}
			continue
		}
		check(a)
	}
}

// FuzzDecode checks that Decode never panics, respects the Limits, and
// ends every stream with io.EOF or an error of the documented kinds.
func FuzzDecode(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, fb byte, data []byte) {
		d := attr.NewDecoder(bufio.NewReaderSize(bytes.NewReader(data), 16), fuzzFormat(fb), fuzzLimits)
		for range len(data) + 1 {
			l, err := d.Decode()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if _, ok := errors.AsType[*attr.ScanError](err); !ok {
					t.Fatalf("error %T %v is not a *ScanError", err, err)
				}
				return
			}
			checkLimits(t, l)
		}
		t.Fatal("Decode did not reach the end of the input")
	})
}

// FuzzRoundTrip checks decode -> encode -> decode gives equal lists, in
// every format.
func FuzzRoundTrip(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, fb byte, data []byte) {
		fm := fuzzFormat(fb)
		lists, _ := decodeAll(fm, data) // lists before any error
		var enc []byte
		for _, l := range lists {
			enc = attr.AppendFormat(enc, fm, l)
		}
		back, err := decodeAll(fm, enc)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", enc, err)
		}
		if diff := cmp.Diff(lists, back); diff != "" {
			t.Fatalf("round trip mismatch (-first +second):\n%s", diff)
		}
	})
}

// FuzzScan runs the scanner the way scache reads a request and checks that
// it never panics and reports errors of the documented kinds.
func FuzzScan(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, fb byte, data []byte) {
		d := attr.NewDecoder(bufio.NewReaderSize(bytes.NewReader(data), 16), fuzzFormat(fb), fuzzLimits)
		d.Warn = func(string) {}
		for range len(data) + 1 {
			var req, label, prop string
			var ttl int
			var tab attr.List
			var data []byte
			var b bool
			var long int64
			n, err := d.Scan(attr.FlagStrict|attr.FlagMore, attr.WantStr("request", &req))
			if err == nil {
				n, err = d.Scan(attr.FlagNone, attr.WantInt("ttl", &ttl), attr.WantLong("n", &long),
					attr.WantStrEq("x", "y"), attr.WantBool("b", &b), attr.WantData("d", &data),
					attr.WantStr("label", &label), attr.WantTable(&tab), attr.WantStr("property", &prop))
			}
			if n < 0 || len(tab) > fuzzLimits.MaxTable {
				t.Fatalf("n=%d, table of %d", n, len(tab))
			}
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if _, ok := errors.AsType[*attr.ScanError](err); !ok {
					t.Fatalf("error %T %v is not a *ScanError", err, err)
				}
				return
			}
		}
		t.Fatal("Scan did not reach the end of the input")
	})
}
