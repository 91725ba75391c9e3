package attr_test

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/goscache/goscache/attr"
)

func TestAppendFormat(t *testing.T) {
	l := attr.List{
		attr.Str("status", "0"),
		attr.Int("ttl", -1),
		attr.Long("n", -2),
		attr.Data("d", []byte("ab\x00")),
		attr.Bool("t", true),
		attr.Bool("f", false),
		attr.Table(attr.List{attr.Str("k", "v")}),
		attr.Table(nil),
	}
	tests := []struct {
		f    attr.Format
		want string
	}{
		{attr.Format0, "status\x000\x00ttl\x004294967295\x00n\x0018446744073709551614\x00d\x00YWIA\x00t\x001\x00f\x000\x00{\x00k\x00v\x00}\x00{\x00}\x00\x00"},
		{attr.FormatBase64, "c3RhdHVz:MA==\ndHRs:NDI5NDk2NzI5NQ==\nbg==:MTg0NDY3NDQwNzM3MDk1NTE2MTQ=\nZA==:YWIA\ndA==:MQ==\nZg==:MA==\new==\naw==:dg==\nfQ==\new==\nfQ==\n\n"},
		{attr.FormatPlain, "status=0\nttl=4294967295\nn=18446744073709551614\nd=YWIA\nt=true\nf=false\n{\x00\nk=v\n}\x00\n{\x00\n}\x00\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.f.String(), func(t *testing.T) {
			if got := string(attr.AppendFormat(nil, tt.f, l)); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	if got := attr.Format(7).String(); got != "attr.Format(7)" {
		t.Errorf("String() = %q", got)
	}
}

func TestEncoder(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	e := attr.NewEncoder(w, attr.Format0)
	if err := e.EncodeMore(attr.List{attr.Str("status", "0")}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("EncodeMore flushed %q", buf.Bytes())
	}
	if err := e.Encode(attr.List{attr.Str("property", "")}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "status\x000\x00property\x00\x00\x00" {
		t.Errorf("wrote %q", got)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestEncoder_writeError(t *testing.T) {
	e := attr.NewEncoder(bufio.NewWriterSize(failWriter{}, 16), attr.Format0)
	if err := e.Encode(attr.List{attr.Str("a", "b")}); err == nil {
		t.Error("Encode to a failing writer: no error")
	}
	if err := e.EncodeMore(attr.List{attr.Str("long name to overflow", "buffer")}); err == nil {
		t.Error("EncodeMore to a failing writer: no error")
	}
}

func TestDecodeData(t *testing.T) {
	tests := []struct {
		f       attr.Format
		in      string
		want    string
		wantErr bool
	}{
		{attr.Format0, "YWJj", "abc", false},
		{attr.Format0, "YQ==", "a", false},
		{attr.Format0, "YQ==!!!!", "a", false}, // base64_decode stops at '='
		{attr.Format0, "YWI=", "ab", false},
		{attr.Format0, "", "", false},
		{attr.Format0, "YQ=", "", true},
		{attr.Format0, "Y!==", "", true},
		{attr.Format0, "YW!=", "", true},
		{attr.Format0, "YWJ!", "", true},
		{attr.Format0, "YWJj\nYWJj", "", true},
		{attr.FormatBase64, "raw\x00", "raw\x00", false},
	}
	for _, tt := range tests {
		got, err := attr.DecodeData(tt.f, tt.in)
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("DecodeData(%v, %q) = %q, %v", tt.f, tt.in, got, err)
		}
	}
}

func TestListGet(t *testing.T) {
	l := attr.List{attr.Table(attr.List{attr.Str("label", "in table")}), attr.Str("label", "a"), attr.Str("label", "b")}
	if v, ok := l.Get("label"); !ok || v != "a" {
		t.Errorf("Get(label) = %q, %v", v, ok)
	}
	if _, ok := l.Get("x"); ok {
		t.Error("Get(x) found something")
	}
}
