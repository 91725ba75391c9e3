package attr_test

import (
	"errors"
	"testing"

	"github.com/goscache/goscache/attr"
)

// TestParseUint32 pins the integer syntax to glibc's sscanf("%u%c") (checked
// with a throwaway C program on Debian 12) and to what the real scache does
// with a ttl (docs/spec/OBSERVED.md): the value is then read as a C
// int and rejected when <= 0.
func TestParseUint32(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr bool
		asInt   int // int(int32(want)): what scache compares with 0
	}{
		{in: "2", want: 2, asInt: 2},
		{in: "+2", want: 2, asInt: 2},
		{in: " 2", want: 2, asInt: 2},
		{in: "0002", want: 2, asInt: 2},
		{in: " +2", want: 2, asInt: 2},
		{in: "\t\n\v\f\r7", want: 7, asInt: 7},
		{in: "0", want: 0, asInt: 0},
		{in: "-0", want: 0, asInt: 0},
		{in: "-2", want: 4294967294, asInt: -2},
		{in: "2147483647", want: 2147483647, asInt: 2147483647},
		{in: "2147483648", want: 2147483648, asInt: -2147483648},
		{in: "4294967295", want: 4294967295, asInt: -1},
		{in: "4294967296", want: 0, asInt: 0},
		{in: "4294967298", want: 2, asInt: 2},
		{in: "00000000000000000000000000004294967298", want: 2, asInt: 2},
		{in: "-4294967296", want: 0, asInt: 0},
		{in: "18446744073709551615", want: 4294967295, asInt: -1},
		{in: "18446744073709551616", want: 4294967295, asInt: -1}, // strtoul saturates
		{in: "99999999999999999999999", want: 4294967295, asInt: -1},
		{in: "-18446744073709551615", want: 1, asInt: 1},
		{in: "-18446744073709551616", want: 4294967295, asInt: -1},
		{in: "2 ", wantErr: true},
		{in: "2\n", wantErr: true},
		{in: "2x", wantErr: true},
		{in: "0x2", wantErr: true},
		{in: "", wantErr: true},
		{in: " ", wantErr: true},
		{in: "+", wantErr: true},
		{in: "-", wantErr: true},
		{in: "+-2", wantErr: true},
		{in: "- 2", wantErr: true},
		{in: "2\x00", wantErr: true}, // callers cut at NUL first
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := attr.ParseUint32(tt.in)
			if tt.wantErr {
				if !errors.Is(err, attr.ErrMalformedInt) {
					t.Fatalf("ParseUint32(%q) = %d, %v; want ErrMalformedInt", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseUint32(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			if asInt := int(int32(got)); asInt != tt.asInt {
				t.Errorf("as C int: %d, want %d", asInt, tt.asInt)
			}
		})
	}
}

func TestParseUint64(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{in: "4294967298", want: 4294967298},
		{in: "-2", want: 18446744073709551614},
		{in: "18446744073709551616", want: 18446744073709551615},
		{in: "-4294967296", want: 18446744069414584320},
		{in: "1x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := attr.ParseUint64(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseUint64(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestOBSERVEDTTL is the ttl table of OBSERVED.md: accepted means the
// real scache took the ttl (C int > 0).
func TestOBSERVEDTTL(t *testing.T) {
	accepted := map[string]bool{
		"+2": true, " 2": true, "0002": true, "4294967298": true,
		"2 ": false, "2x": false, "0x2": false, "": false, "-2": false, "0": false,
		"2147483648": false, "3000000000": false, "4294967295": false, "4294967296": false,
	}
	for in, want := range accepted {
		u, err := attr.ParseUint32(in)
		if got := err == nil && int32(u) > 0; got != want {
			t.Errorf("ttl %q accepted = %v, want %v", in, got, want)
		}
	}
}
