package mastercompat

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadEnv(t *testing.T) {
	env := map[string]string{
		"MAIL_CONFIG": "/etc/postfix-out", "MAIL_LOGTAG": "postfix-out", "GENERATION": "17",
		"POSTLOG_SERVICE": "/var/spool/postfix/public/postlog", "POSTLOG_HOSTNAME": "mx1.example",
		"MAIL_VERBOSE": "", "LANG": "C",
	}
	got := readEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	want := masterEnv{ConfigDir: "/etc/postfix-out", LogTag: "postfix-out", Generation: "17", HasGeneration: true,
		PostlogService: "/var/spool/postfix/public/postlog", PostlogHostname: "mx1.example", Verbose: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadEnv mismatch (-want +got):\n%s", diff)
	}
	if got := readEnv(func(string) (string, bool) { return "", false }); got.ConfigDir != defaultConfigDir || got.HasGeneration {
		t.Errorf("readEnv(empty) = %+v", got)
	}
}

func TestParseGeneration(t *testing.T) {
	tests := []struct {
		in      string
		set     bool
		want    uint32
		wantErr string
	}{
		{"", false, 0, ""},
		{"0", true, 0, ""},
		{"1", true, 1, ""},
		{"10", true, 8, ""},
		{"17", true, 15, ""},
		{"0777", true, 511, ""},
		{"18", true, 1, ""}, // strtoul base 8 stops at 8
		{"9", true, 0, ""},
		{"37777777777", true, 0xffffffff, ""},
		{"40000000001", true, 1, ""}, // truncated to 32 bits
		{"", true, 0, "bad generation: "},
		{"-1", true, 0, "bad generation: -1"},
		{" 7", true, 0, "bad generation:  7"},
		{"7x", true, 0, "bad generation: 7x"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := masterEnv{Generation: tt.in, HasGeneration: tt.set}.parseGeneration()
			if tt.wantErr != "" {
				var fe *FatalError
				if !errors.As(err, &fe) || fe.Text != tt.wantErr {
					t.Fatalf("parseGeneration(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseGeneration(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}
