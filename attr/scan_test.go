package attr_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/goscache/goscache/attr"
)

// want builds Scan items from a compact spec ("str:name", "int:name",
// "long:name", "data:name", "bool:name", "eq:name=value", "table") and
// returns a function that renders what was stored.
func want(spec ...string) ([]attr.Item, func() []string) {
	var items []attr.Item
	var show []func() string
	for _, s := range spec {
		kind, name, _ := strings.Cut(s, ":")
		switch kind {
		case "str":
			p := new(string)
			items = append(items, attr.WantStr(name, p))
			show = append(show, func() string { return fmt.Sprintf("%s=%q", name, *p) })
		case "int":
			p := new(int)
			items = append(items, attr.WantInt(name, p))
			show = append(show, func() string { return fmt.Sprintf("%s=%d", name, *p) })
		case "long":
			p := new(int64)
			items = append(items, attr.WantLong(name, p))
			show = append(show, func() string { return fmt.Sprintf("%s=%d", name, *p) })
		case "data":
			p := new([]byte)
			items = append(items, attr.WantData(name, p))
			show = append(show, func() string { return fmt.Sprintf("%s=%q", name, *p) })
		case "bool":
			p := new(bool)
			items = append(items, attr.WantBool(name, p))
			show = append(show, func() string { return fmt.Sprintf("%s=%v", name, *p) })
		case "eq":
			n, v, _ := strings.Cut(name, "=")
			items = append(items, attr.WantStrEq(n, v))
		case "table":
			p := new(attr.List)
			items = append(items, attr.WantTable(p))
			show = append(show, func() string {
				var parts []string
				for _, a := range *p {
					parts = append(parts, a.Name+"="+a.Value)
				}
				return "{" + strings.Join(parts, " ") + "}"
			})
		default:
			panic("bad spec " + s)
		}
	}
	return items, func() []string {
		var out []string
		for _, f := range show {
			out = append(out, f())
		}
		return out
	}
}

type scanCase struct {
	name     string
	f        attr.Format
	in       string
	flags    attr.Flags
	spec     []string
	lim      attr.Limits
	wantN    int
	wantVals []string // rendered values; nil: don't check
	wantWarn []string
	wantErr  error
	wantMsg  string
	wantRest string // bytes left unread
}

const saveEndp = "request\x00save_endp\x00ttl\x002\x00label\x00L\x00property\x00P\x00\x00"

var scanCases = []scanCase{
	{name: "strict ok", in: "label\x00L\x00\x00", flags: attr.FlagStrict, spec: []string{"str:label"},
		wantN: 1, wantVals: []string{`label="L"`}},
	{name: "request more", in: saveEndp, flags: attr.FlagStrict | attr.FlagMore, spec: []string{"str:request"},
		wantN: 1, wantVals: []string{`request="save_endp"`}, wantRest: "ttl\x002\x00label\x00L\x00property\x00P\x00\x00"},
	{name: "clean eof", in: "", spec: []string{"str:label"}, wantN: 0, wantErr: io.EOF},
	{name: "missing", in: "label\x00L\x00\x00", flags: attr.FlagStrict, spec: []string{"str:label", "str:property"},
		wantN: 1, wantWarn: []string{"missing attribute property in input from input"}},
	{name: "missing silent", in: "\x00", spec: []string{"str:label"}, wantN: 0},
	{name: "extra strict", in: "label\x00L\x00x\x00X\x00\x00", flags: attr.FlagStrict, spec: []string{"str:label"},
		wantN: 1, wantWarn: []string{"unexpected attribute x from input (expecting: (list terminator))"}, wantRest: "X\x00\x00"},
	{name: "extra before wanted strict", in: "x\x00X\x00label\x00L\x00\x00", flags: attr.FlagStrict, spec: []string{"str:label"},
		wantN: 0, wantWarn: []string{"unexpected attribute x from input (expecting: label)"}, wantRest: "X\x00label\x00L\x00\x00"},
	{name: "extra skipped", in: "x\x00X\x00label\x00L\x00y\x00\x00\x00", spec: []string{"str:label"},
		wantN: 1, wantVals: []string{`label="L"`}},
	{name: "int", in: "ttl\x00 +2\x00\x00", spec: []string{"int:ttl"}, wantN: 1, wantVals: []string{"ttl=2"}},
	{name: "int negative", in: "ttl\x00-2\x00\x00", spec: []string{"int:ttl"}, wantN: 1, wantVals: []string{"ttl=-2"}},
	{name: "int wraps", in: "ttl\x004294967298\x00\x00", spec: []string{"int:ttl"}, wantN: 1, wantVals: []string{"ttl=2"}},
	{name: "int bad", in: "ttl\x002x\x00\x00", spec: []string{"int:ttl"}, wantErr: attr.ErrMalformedInt,
		wantMsg: "malformed numerical data from input while reading input attribute value: 2x"},
	{name: "int bad long text", in: "ttl\x00" + strings.Repeat("9", 150) + "x\x00\x00", spec: []string{"int:ttl"}, wantErr: attr.ErrMalformedInt,
		wantMsg: "malformed numerical data from input while reading input attribute value: " + strings.Repeat("9", 100)},
	{name: "long", in: "n\x004294967298\x00\x00", spec: []string{"long:n"}, wantN: 1, wantVals: []string{"n=4294967298"}},
	{name: "long bad", in: "n\x00x\x00\x00", spec: []string{"long:n"}, wantErr: attr.ErrMalformedInt},
	{name: "data", in: "d\x00YWI=\x00\x00", spec: []string{"data:d"}, wantN: 1, wantVals: []string{`d="ab"`}},
	{name: "data bad", in: "d\x00YWI\x00\x00", spec: []string{"data:d"}, wantErr: attr.ErrMalformedData,
		wantMsg: "malformed base64 data from input while reading input attribute value: YWI"},
	{name: "bool", in: "b\x001\x00\x00", spec: []string{"bool:b"}, wantN: 1, wantVals: []string{"b=true"}},
	{name: "bool 2", in: "b\x002\x00\x00", spec: []string{"bool:b"}, wantErr: attr.ErrMalformedBool,
		wantMsg: "malformed boolean value from input while reading input attribute value: 2"},
	{name: "bool text", in: "b\x00true\x00\x00", spec: []string{"bool:b"}, wantErr: attr.ErrMalformedInt,
		wantMsg: "malformed numerical data from input while reading input attribute value: true"},
	{name: "streq ok", in: "protocol\x00connection_cache_protocol\x00\x00", flags: attr.FlagStrict,
		spec: []string{"eq:protocol=connection_cache_protocol"}, wantN: 0},
	{name: "streq bad", in: "protocol\x00x\x00\x00", spec: []string{"eq:protocol=connection_cache_protocol"},
		wantErr: attr.ErrUnexpectedValue, wantMsg: "unexpected protocol x from input (expected: connection_cache_protocol)"},
	{name: "unbraced table", in: "a\x001\x00b\x002\x00a\x003\x00\x00", spec: []string{"table"},
		wantN: 3, wantVals: []string{"{a=1 b=2}"}},
	{name: "unbraced table dup strict", in: "a\x001\x00a\x003\x00b\x002\x00\x00", flags: attr.FlagExtra, spec: []string{"table"},
		wantN: 1, wantVals: []string{"{a=1}"}, wantWarn: []string{"duplicate attribute a in input from input"}, wantRest: "b\x002\x00\x00"},
	{name: "braced table then items", in: "x\x001\x00{\x00a\x00A\x00{\x00B\x00}\x00y\x00Y\x00\x00",
		spec: []string{"str:x", "table", "str:y"}, wantN: 4, wantVals: []string{`x="1"`, "{a=A {=B}", `y="Y"`}},
	{name: "braced table more", in: "{\x00a\x00A\x00}\x00rest\x00\x00", flags: attr.FlagMore,
		spec: []string{"table"}, wantN: 1, wantVals: []string{"{a=A}"}, wantRest: "rest\x00\x00"},
	{name: "unbraced then braced", in: "a\x00A\x00{\x00b\x00B\x00}\x00\x00", spec: []string{"table"},
		wantN: 2, wantVals: []string{"{a=A b=B}"}},
	{name: "braced table terminator", in: "{\x00a\x00A\x00\x00", flags: attr.FlagMissing, spec: []string{"table"},
		wantN: 1, wantWarn: []string{"missing attribute (any attribute name or '}') in input from input"}},
	{name: "table limit", in: "a\x00A\x00b\x00B\x00c\x00C\x00\x00", lim: attr.Limits{MaxTable: 2}, spec: []string{"table"},
		wantN: 2, wantVals: []string{"{a=A b=B}"}, wantWarn: []string{"attribute count exceeds limit 2 in input from input"}, wantRest: "\x00"},
	{name: "table dup at limit", in: "a\x00A\x00b\x00B\x00a\x00C\x00\x00", lim: attr.Limits{MaxTable: 2}, spec: []string{"table"},
		wantN: 3, wantVals: []string{"{a=A b=B}"}},
	{name: "too many names", in: "a\x00\x00b\x00\x00c\x00\x00\x00", lim: attr.Limits{MaxAttrs: 2}, spec: []string{"str:c"},
		wantErr: attr.ErrTooMany, wantMsg: "attribute count exceeds limit 2 in input from input"},
	{name: "eof in name", in: "lab", spec: []string{"str:label"}, wantErr: io.ErrUnexpectedEOF,
		wantMsg: "unexpected end-of-input from input while reading input attribute name"},
	{name: "eof in skipped value", in: "x\x00X", spec: []string{"str:label"}, wantErr: io.ErrUnexpectedEOF,
		wantWarn: []string{"unexpected end-of-input from input while reading input attribute value"},
		wantMsg:  "premature end-of-input on input while reading input attribute name"},
	{name: "eof before terminator", in: "label\x00L\x00", spec: []string{"str:label"}, wantN: 1, wantErr: io.ErrUnexpectedEOF,
		wantMsg: "premature end-of-input on input while reading input attribute name"},
	{name: "skipped value too long", in: "x\x00" + strings.Repeat("v", 50), lim: attr.Limits{MaxString: 20}, spec: []string{"str:label"},
		wantErr: attr.ErrTooLong},

	{name: "64/int", f: attr.FormatBase64, in: "dHRs:Mg==\n\n", flags: attr.FlagStrict, spec: []string{"int:ttl"}, wantN: 1, wantVals: []string{"ttl=2"}},
	{name: "64/int NUL", f: attr.FormatBase64, in: "dHRs:MgB4\n\n", spec: []string{"int:ttl"}, wantN: 1, wantVals: []string{"ttl=2"}},
	{name: "64/name NUL", f: attr.FormatBase64, in: "dHRsAHg=:Mg==\n\n", spec: []string{"int:ttl"}, wantN: 1, wantVals: []string{"ttl=2"}},
	{name: "64/missing value int", f: attr.FormatBase64, in: "dHRs\n\n", spec: []string{"int:ttl"}, wantErr: attr.ErrMalformed,
		wantMsg: "missing value for number attribute ttl from input"},
	{name: "64/missing value bool", f: attr.FormatBase64, in: "Yg==\n\n", spec: []string{"bool:b"}, wantErr: attr.ErrMalformed,
		wantMsg: "missing value for boolean attribute b from input"},
	{name: "64/missing value data", f: attr.FormatBase64, in: "ZA==\n\n", spec: []string{"data:d"}, wantErr: attr.ErrMalformed,
		wantMsg: "missing value for data attribute d from input"},
	{name: "64/missing value str", f: attr.FormatBase64, in: "bA==\n\n", spec: []string{"str:l"}, wantErr: attr.ErrMalformed,
		wantMsg: "missing value for string attribute l from input"},
	{name: "64/multiple int bad first", f: attr.FormatBase64, in: "dHRs:eA==:Mg==\n\n", spec: []string{"int:ttl"}, wantErr: attr.ErrMalformedInt},
	{name: "64/multiple int", f: attr.FormatBase64, in: "dHRs:Mg==:Mg==\n\n", spec: []string{"int:ttl"}, wantErr: attr.ErrMalformed,
		wantMsg: "multiple values for attribute ttl from input"},
	{name: "64/multiple str", f: attr.FormatBase64, in: "bA==:Mg==:Mg==\n\n", spec: []string{"str:l"}, wantErr: attr.ErrMalformed,
		wantMsg: "multiple values for attribute l from input"},
	{name: "64/data", f: attr.FormatBase64, in: "ZA==:YWI=\n\n", spec: []string{"data:d"}, wantN: 1, wantVals: []string{`d="ab"`}},
	{name: "64/bool", f: attr.FormatBase64, in: "Yg==:MA==\n\n", spec: []string{"bool:b"}, wantN: 1, wantVals: []string{"b=false"}},
	{name: "64/skip no value", f: attr.FormatBase64, in: "eA==\nbA==:TA==\n\n", spec: []string{"str:l"}, wantN: 1, wantVals: []string{`l="L"`}},
	{name: "64/skip bad base64", f: attr.FormatBase64, in: "eA==:!!:!\nbA==:TA==\n\n", spec: []string{"str:l"}, wantN: 1, wantVals: []string{`l="L"`}},
	{name: "64/eof in skip", f: attr.FormatBase64, in: "eA==:!!", spec: []string{"str:l"}, wantErr: io.ErrUnexpectedEOF,
		wantMsg: "premature end-of-input on input while reading input attribute name"},
	{name: "64/empty name is no terminator", f: attr.FormatBase64, in: ":eA==\nbA==:TA==\n\n", flags: attr.FlagStrict, spec: []string{"str:l"},
		wantN: 0, wantWarn: []string{"unexpected attribute  from input (expecting: l)"}, wantRest: "eA==\nbA==:TA==\n\n"},
	{name: "64/braced table", f: attr.FormatBase64, in: "ew==\nYQ==:QQ==\nfQ==\n\n", spec: []string{"table"}, wantN: 1, wantVals: []string{"{a=A}"}},
	{name: "64/brace with value is an entry", f: attr.FormatBase64, in: "ew==:QQ==\n\n", spec: []string{"table"}, wantN: 1, wantVals: []string{"{{=A}"}},
	{name: "64/table missing value", f: attr.FormatBase64, in: "ew==\nYQ==\n\n", spec: []string{"table"}, wantErr: attr.ErrMalformed,
		wantMsg: "missing value for string attribute a from input"},
	{name: "64/bad base64 name", f: attr.FormatBase64, in: "YQ=:\n\n", spec: []string{"str:a"}, wantErr: attr.ErrMalformedData,
		wantMsg: "malformed base64 data from input: YQ="},

	{name: "plain/bool", f: attr.FormatPlain, in: "b=true\n\n", spec: []string{"bool:b"}, wantN: 1, wantVals: []string{"b=true"}},
	{name: "plain/bool 1", f: attr.FormatPlain, in: "b=1\n\n", spec: []string{"bool:b"}, wantErr: attr.ErrMalformedBool,
		wantMsg: "malformed boolean value from input while reading input attribute value: 1"},
	{name: "plain/missing value bool", f: attr.FormatPlain, in: "b\n\n", spec: []string{"bool:b"}, wantErr: attr.ErrMalformed,
		wantMsg: "missing value for number attribute b from input"},
	{name: "plain/data", f: attr.FormatPlain, in: "d=YWI=\n\n", spec: []string{"data:d"}, wantN: 1, wantVals: []string{`d="ab"`}},
	{name: "plain/str with NUL whole", f: attr.FormatPlain, in: "l=a\x00b\n\n", spec: []string{"str:l"}, wantN: 1, wantVals: []string{`l="a\x00b"`}},
	{name: "plain/table NUL markers", f: attr.FormatPlain, in: "{\x00\na=A\n}\x00\nz=Z\n\n", spec: []string{"table", "str:z"},
		wantN: 2, wantVals: []string{"{a=A}", `z="Z"`}},
	{name: "plain/skip", f: attr.FormatPlain, in: "x=1\ny\nl=L\n\n", spec: []string{"str:l"}, wantN: 1, wantVals: []string{`l="L"`}},
	{name: "plain/eof", f: attr.FormatPlain, in: "l=L", spec: []string{"str:l"}, wantErr: io.ErrUnexpectedEOF,
		wantMsg: "premature end-of-input on input while reading input attribute value"},
}

func TestScan(t *testing.T) {
	for _, tt := range scanCases {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				br := bufio.NewReaderSize(rd.wrap(strings.NewReader(tt.in)), rd.size)
				d := attr.NewDecoder(br, tt.f, tt.lim)
				var warns []string
				d.Warn = func(msg string) { warns = append(warns, msg) }
				items, show := want(tt.spec...)
				n, err := d.Scan(tt.flags, items...)
				if tt.wantErr != nil {
					checkErr(t, err, tt.wantErr, tt.wantMsg)
				} else if err != nil {
					t.Fatalf("Scan: %v", err)
				}
				if err == nil && n != tt.wantN {
					t.Errorf("Scan = %d, want %d", n, tt.wantN)
				}
				if tt.wantVals != nil {
					if diff := cmp.Diff(tt.wantVals, show()); diff != "" {
						t.Errorf("values mismatch (-want +got):\n%s", diff)
					}
				}
				if diff := cmp.Diff(tt.wantWarn, warns); diff != "" {
					t.Errorf("warnings mismatch (-want +got):\n%s", diff)
				}
				if tt.wantErr == nil {
					rest, _ := io.ReadAll(br)
					if string(rest) != tt.wantRest {
						t.Errorf("left unread %q, want %q", rest, tt.wantRest)
					}
				}
			})
		}
	}
}

// TestScan_scacheRequest reads a save_endp request the way scache(8) does:
// the request name with FlagMore, then the rest strictly.
func TestScan_scacheRequest(t *testing.T) {
	d := attr.NewDecoder(bufio.NewReader(strings.NewReader(saveEndp+saveEndp)), attr.Format0, attr.Limits{})
	for range 2 {
		var req, label, prop string
		var ttl int
		if n, err := d.Scan(attr.FlagStrict|attr.FlagMore, attr.WantStr("request", &req)); n != 1 || err != nil {
			t.Fatalf("Scan request = %d, %v", n, err)
		}
		n, err := d.Scan(attr.FlagStrict, attr.WantInt("ttl", &ttl), attr.WantStr("label", &label), attr.WantStr("property", &prop))
		if n != 3 || err != nil || req != "save_endp" || ttl != 2 || label != "L" || prop != "P" {
			t.Fatalf("Scan = %d, %v: %q %d %q %q", n, err, req, ttl, label, prop)
		}
	}
	if n, err := d.Scan(attr.FlagStrict); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("Scan at end = %d, %v; want 0, io.EOF", n, err)
	}
}

// TestScan_prefilledTable checks that entries already in the caller's
// table count as present, as in Postfix's htable.
func TestScan_prefilledTable(t *testing.T) {
	d := attr.NewDecoder(bufio.NewReader(strings.NewReader("a\x00new\x00b\x00B\x00\x00")), attr.Format0, attr.Limits{})
	tab := attr.List{attr.Str("a", "old")}
	n, err := d.Scan(attr.FlagNone, attr.WantTable(&tab))
	if n != 2 || err != nil {
		t.Fatalf("Scan = %d, %v", n, err)
	}
	if diff := cmp.Diff(attr.List{attr.Str("a", "old"), attr.Str("b", "B")}, tab); diff != "" {
		t.Errorf("table mismatch (-want +got):\n%s", diff)
	}
}

func TestScan_timeout(t *testing.T) {
	d := attr.NewDecoder(bufio.NewReader(&errReader{data: "x\x00", err: errDeadline}), attr.Format0, attr.Limits{})
	var warns []string
	d.Warn = func(msg string) { warns = append(warns, msg) }
	var l string
	_, err := d.Scan(attr.FlagNone, attr.WantStr("label", &l))
	checkErr(t, err, errDeadline, "timeout on input while reading input attribute name")
	if diff := cmp.Diff([]string{"timeout on input while reading input attribute value"}, warns); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

// TestScan_strBytes checks WantStrBytes: the same values as WantStr, a
// value copied into the caller's slice, its storage reused, and no
// allocation once the slices have grown.
func TestScan_strBytes(t *testing.T) {
	const input = "request\x00save_endp\x00ttl\x002\x00label\x00a longer label\x00property\x00P\x00\x00" +
		"request\x00save_endp\x00ttl\x003\x00label\x00L\x00property\x00\x00\x00"
	r := strings.NewReader(input)
	br := bufio.NewReader(r)
	d := attr.NewDecoder(br, attr.Format0, attr.Limits{})
	var req, label, prop []byte
	var ttl int
	items := []attr.Item{attr.WantInt("ttl", &ttl), attr.WantStrBytes("label", &label), attr.WantStrBytes("property", &prop)}
	reqItem := []attr.Item{attr.WantStrBytes("request", &req)}
	read := func() {
		if n, err := d.Scan(attr.FlagStrict|attr.FlagMore, reqItem...); n != 1 || err != nil {
			t.Fatalf("Scan request = %d, %v", n, err)
		}
		if n, err := d.Scan(attr.FlagStrict, items...); n != 3 || err != nil {
			t.Fatalf("Scan = %d, %v", n, err)
		}
	}
	scan := func() string {
		read()
		return fmt.Sprintf("%s %d %q %q", req, ttl, label, prop)
	}
	if got, want := scan(), `save_endp 2 "a longer label" "P"`; got != want {
		t.Errorf("first list: %s, want %s", got, want)
	}
	first := &label[0]
	if got, want := scan(), `save_endp 3 "L" ""`; got != want {
		t.Errorf("second list: %s, want %s", got, want)
	}
	if &label[0] != first {
		t.Errorf("label's storage was not reused")
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(input)
		br.Reset(r)
		read()
		read()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per two lists, want 0", allocs)
	}
}
