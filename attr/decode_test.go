package attr_test

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/attr"
)

type decodeCase struct {
	name    string
	f       attr.Format
	in      string
	lim     attr.Limits
	want    []attr.List // lists decoded before the end (or the error)
	wantErr error       // matched with errors.Is; nil: clean io.EOF after want
	wantMsg string      // ScanError.Msg, if set
}

var decodeCases = []decodeCase{
	{name: "0/empty list", f: attr.Format0, in: "\x00", want: []attr.List{{}}},
	{name: "0/status", f: attr.Format0, in: "status\x000\x00\x00", want: []attr.List{{attr.Str("status", "0")}}},
	{name: "0/empty values", f: attr.Format0, in: "status\x002\x00property\x00\x00\x00",
		want: []attr.List{{attr.Str("status", "2"), attr.Str("property", "")}}},
	{name: "0/glued", f: attr.Format0, in: "dummy\x00\x00\x00request\x00find_dest\x00\x00",
		want: []attr.List{{attr.Str("dummy", "")}, {attr.Str("request", "find_dest")}}},
	{name: "0/opaque bytes", f: attr.Format0, in: "l\x00 a\xff\n\t=:{ \x00\x00",
		want: []attr.List{{attr.Str("l", " a\xff\n\t=:{ ")}}},
	{name: "0/table", f: attr.Format0, in: "a\x001\x00{\x00k\x00v\x00{\x00x\x00}\x00b\x002\x00\x00",
		want: []attr.List{{attr.Str("a", "1"), attr.Table(attr.List{attr.Str("k", "v"), attr.Str("{", "x")}), attr.Str("b", "2")}}},
	{name: "0/close outside table", f: attr.Format0, in: "}\x00v\x00\x00", want: []attr.List{{attr.Str("}", "v")}}},
	{name: "0/empty table", f: attr.Format0, in: "{\x00}\x00\x00", want: []attr.List{{attr.Table(nil)}}},
	{name: "0/terminator in table", f: attr.Format0, in: "{\x00k\x00v\x00\x00", wantErr: attr.ErrMalformed,
		wantMsg: "missing attribute (any attribute name or '}') in input from input"},
	{name: "0/eof in name", f: attr.Format0, in: "status", wantErr: io.ErrUnexpectedEOF,
		wantMsg: "unexpected end-of-input from input while reading input attribute name"},
	{name: "0/eof in name 0xff", f: attr.Format0, in: "status\xff", wantErr: io.ErrUnexpectedEOF,
		wantMsg: "premature end-of-input on input while reading input attribute name"},
	{name: "0/eof before value", f: attr.Format0, in: "status\x00", wantErr: io.ErrUnexpectedEOF,
		wantMsg: "premature end-of-input on input while reading input attribute value"},
	{name: "0/eof in value", f: attr.Format0, in: "status\x000", wantErr: io.ErrUnexpectedEOF,
		wantMsg: "unexpected end-of-input from input while reading input attribute value"},
	{name: "0/eof before terminator", f: attr.Format0, in: "status\x000\x00", wantErr: io.ErrUnexpectedEOF,
		wantMsg: "premature end-of-input on input while reading input attribute name"},
	{name: "0/name too long", f: attr.Format0, in: strings.Repeat("n", 40) + "\x00v\x00\x00", lim: attr.Limits{MaxString: 39},
		wantErr: attr.ErrTooLong, wantMsg: "string length > 39 characters from input while reading input attribute name"},
	{name: "0/value at limit", f: attr.Format0, in: "n\x00" + strings.Repeat("v", 39) + "\x00\x00", lim: attr.Limits{MaxString: 39},
		want: []attr.List{{attr.Str("n", strings.Repeat("v", 39))}}},
	{name: "0/value too long", f: attr.Format0, in: "n\x00" + strings.Repeat("v", 100), lim: attr.Limits{MaxString: 39},
		wantErr: attr.ErrTooLong, wantMsg: "string length > 39 characters from input while reading input attribute value"},
	{name: "0/too many", f: attr.Format0, in: "a\x00\x00b\x00\x00c\x00\x00\x00", lim: attr.Limits{MaxAttrs: 2},
		wantErr: attr.ErrTooMany, wantMsg: "attribute count exceeds limit 2 in input from input"},
	{name: "0/at attr limit", f: attr.Format0, in: "a\x00\x00b\x00\x00\x00", lim: attr.Limits{MaxAttrs: 2},
		want: []attr.List{{attr.Str("a", ""), attr.Str("b", "")}}},
	{name: "0/table too big", f: attr.Format0, in: "{\x00a\x00\x00b\x00\x00}\x00\x00", lim: attr.Limits{MaxTable: 1},
		wantErr: attr.ErrTooMany, wantMsg: "attribute count exceeds limit 1 in input from input"},

	{name: "64/status", f: attr.FormatBase64, in: "c3RhdHVz:MA==\n\n", want: []attr.List{{attr.Str("status", "0")}}},
	{name: "64/empty value", f: attr.FormatBase64, in: "cHJvcGVydHk=:\n\n", want: []attr.List{{attr.Str("property", "")}}},
	{name: "64/empty name with value", f: attr.FormatBase64, in: ":MA==\n\n", want: []attr.List{{attr.Str("", "0")}}},
	{name: "64/table", f: attr.FormatBase64, in: "ew==\naw==:dg==\nfQ==\n\n", want: []attr.List{{attr.Table(attr.List{attr.Str("k", "v")})}}},
	{name: "64/brace with value", f: attr.FormatBase64, in: "ew==:dg==\n\n", want: []attr.List{{attr.Str("{", "v")}}},
	{name: "64/padding ends data", f: attr.FormatBase64, in: "YQ==YmJi:YWI=x===\n\n", want: []attr.List{{attr.Str("a", "ab")}}},
	{name: "64/loose bits", f: attr.FormatBase64, in: "YR==:YWJ=\n\n", want: []attr.List{{attr.Str("a", "ab")}}},
	{name: "64/bad length", f: attr.FormatBase64, in: "YQ=:MA==\n\n", wantErr: attr.ErrMalformedData,
		wantMsg: "malformed base64 data from input: YQ="},
	{name: "64/bad char", f: attr.FormatBase64, in: "c3RhdHVz:M\x00==\n\n", wantErr: attr.ErrMalformedData,
		wantMsg: "malformed base64 data from input: M"},
	{name: "64/pad in 2nd place", f: attr.FormatBase64, in: "Y===:\n\n", wantErr: attr.ErrMalformedData},
	{name: "64/missing value", f: attr.FormatBase64, in: "c3RhdHVz\n\n", wantErr: attr.ErrMalformed,
		wantMsg: "missing value for string attribute status from input"},
	{name: "64/multiple values", f: attr.FormatBase64, in: "c3RhdHVz:MA==:MQ==\n\n", wantErr: attr.ErrMalformed,
		wantMsg: "multiple values for attribute status from input"},
	{name: "64/eof in name", f: attr.FormatBase64, in: "c3Rh", wantErr: io.ErrUnexpectedEOF,
		wantMsg: "premature end-of-input on input while reading input attribute name"},

	{name: "plain/status", f: attr.FormatPlain, in: "status=0\n\n", want: []attr.List{{attr.Str("status", "0")}}},
	{name: "plain/value with =", f: attr.FormatPlain, in: "a=b=c\n\n", want: []attr.List{{attr.Str("a", "b=c")}}},
	{name: "plain/empty name", f: attr.FormatPlain, in: "=x\n\n", want: []attr.List{{attr.Str("", "x")}}},
	{name: "plain/table with NUL markers", f: attr.FormatPlain, in: "{\x00\nk=v\n}\x00\n\n", want: []attr.List{{attr.Table(attr.List{attr.Str("k", "v")})}}},
	{name: "plain/table bare markers", f: attr.FormatPlain, in: "{\nk=v\n}\n\n", want: []attr.List{{attr.Table(attr.List{attr.Str("k", "v")})}}},
	{name: "plain/brace with value", f: attr.FormatPlain, in: "{=v\n\n", want: []attr.List{{attr.Str("{", "v")}}},
	{name: "plain/missing value", f: attr.FormatPlain, in: "status\n\n", wantErr: attr.ErrMalformed,
		wantMsg: "missing value for string attribute status from input"},
	{name: "plain/eof in value", f: attr.FormatPlain, in: "status=0", wantErr: io.ErrUnexpectedEOF,
		wantMsg: "premature end-of-input on input while reading input attribute value"},
}

func checkErr(t *testing.T, err, wantErr error, wantMsg string) {
	t.Helper()
	if !errors.Is(err, wantErr) {
		t.Fatalf("error %v, want %v", err, wantErr)
	}
	if wantMsg == "" {
		return
	}
	se, ok := errors.AsType[*attr.ScanError](err)
	if !ok {
		t.Fatalf("error %T %v is not a *ScanError", err, err)
	}
	if se.Msg != wantMsg {
		t.Errorf("message %q, want %q", se.Msg, wantMsg)
	}
}

// readers wraps the input the ways a socket may deliver it.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
	size int // bufio size; 16 is bufio's minimum and splits tokens
}{
	{"plain", func(r io.Reader) io.Reader { return r }, 4096},
	{"small buffer", func(r io.Reader) io.Reader { return r }, 16},
	{"OneByteReader", iotest.OneByteReader, 16},
	{"HalfReader", iotest.HalfReader, 16},
	{"DataErrReader", iotest.DataErrReader, 4096},
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeCases {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				d := attr.NewDecoder(bufio.NewReaderSize(rd.wrap(strings.NewReader(tt.in)), rd.size), tt.f, tt.lim)
				var got []attr.List
				var err error
				for {
					var l attr.List
					if l, err = d.Decode(); err != nil {
						break
					}
					got = append(got, l)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("lists mismatch (-want +got):\n%s", diff)
				}
				if tt.wantErr == nil {
					if !errors.Is(err, io.EOF) {
						t.Fatalf("error %v, want io.EOF", err)
					}
					return
				}
				checkErr(t, err, tt.wantErr, tt.wantMsg)
			})
		}
	}
}

// errReader fails with err once its data is consumed.
type errReader struct {
	data string
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Is(e error) bool { return e == osErrDeadline }

func TestDecode_readerErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		r       io.Reader
		wantErr error
		wantMsg string
	}{
		{"timeout at start", &errReader{err: errDeadline}, errDeadline, ""},
		{"error at start", &errReader{err: errBoom}, errBoom, ""},
		{"timeout before value", &errReader{data: "a\x00", err: errDeadline}, errDeadline,
			"timeout on input while reading input attribute value"},
		{"timeout inside value", &errReader{data: "a\x00x", err: errDeadline}, errDeadline,
			"unexpected end-of-input from input while reading input attribute value"},
		{"error before name", &errReader{data: "a\x00x\x00", err: errBoom}, errBoom,
			"premature end-of-input on input while reading input attribute name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := attr.NewDecoder(bufio.NewReader(tt.r), attr.Format0, attr.Limits{})
			_, err := d.Decode()
			if tt.wantMsg == "" {
				if err != tt.wantErr { //nolint:errorlint // the very error, not wrapped: the decoder must return it unchanged
					t.Fatalf("error %v, want %v unchanged", err, tt.wantErr)
				}
				return
			}
			checkErr(t, err, tt.wantErr, tt.wantMsg)
		})
	}
}

func TestDecode_streamName(t *testing.T) {
	d := attr.NewDecoder(bufio.NewReader(strings.NewReader("a")), attr.Format0, attr.Limits{})
	d.Stream = "scache socket"
	_, err := d.Decode()
	checkErr(t, err, io.ErrUnexpectedEOF, "unexpected end-of-input from scache socket while reading input attribute name")
	if got := err.Error(); got != "attr: unexpected end-of-input from scache socket while reading input attribute name" {
		t.Errorf("Error() = %q", got)
	}
}

// TestDecode_buffered checks that Decode stops at the end of its list so a
// caller can tell whether bytes (such as a glued dummy) are left over.
func TestDecode_buffered(t *testing.T) {
	d := attr.NewDecoder(bufio.NewReader(strings.NewReader("a\x00b\x00\x00dummy\x00\x00\x00")), attr.Format0, attr.Limits{})
	if _, err := d.Decode(); err != nil {
		t.Fatal(err)
	}
	if got := d.Buffered(); got != 8 {
		t.Errorf("Buffered() = %d after the first list, want 8", got)
	}
	if _, err := d.Decode(); err != nil {
		t.Fatal(err)
	}
	if got := d.Buffered(); got != 0 {
		t.Errorf("Buffered() = %d at the end, want 0", got)
	}
}
