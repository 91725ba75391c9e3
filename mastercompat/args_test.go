package mastercompat

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want *Args
	}{
		{
			name: "debian stock master.cf line",
			argv: []string{"scache", "-l", "-t", "unix", "-u", "-c"},
			want: &Args{processName: "scache", serviceName: "scache", Alone: true, transport: "unix", unpriv: true, chroot: true, socketCount: 1},
		},
		{
			name: "goscache binary on the scache service",
			argv: []string{"goscache", "-l", "-n", "scache", "-t", "unix", "-u", "-c"},
			want: &Args{processName: "goscache", serviceName: "scache", Alone: true, transport: "unix", unpriv: true, chroot: true, socketCount: 1},
		},
		{
			name: "clustered flags and glued arguments",
			argv: []string{"/usr/lib/postfix/sbin/goscache", "-lucvv", "-nscache", "-tunix", "-vVz"},
			want: &Args{processName: "goscache", serviceName: "scache", Alone: true, unpriv: true, chroot: true, verbose: 3, stderr: 1, zeroLimit: true, transport: "unix", socketCount: 1},
		},
		{
			name: "option argument last in a cluster takes the next word",
			argv: []string{"scache", "-ln", "cache2", "-dt", "inet", "-s", "3"},
			want: &Args{processName: "scache", serviceName: "cache2", Alone: true, noDetach: true, transport: "inet", socketCount: 3},
		},
		{
			name: "repeated -o, -i and -m in order",
			argv: []string{"scache", "-l", "-t", "unix", "-o", "connection_cache_ttl_limit=10s", "-o", " syslog_name = postfix-out ", "-i", "5", "-m", "7", "-oempty="},
			want: &Args{processName: "scache", serviceName: "scache", Alone: true, transport: "unix", socketCount: 1,
				overrides: []override{{"connection_cache_ttl_limit", "10s"}, {"syslog_name", "postfix-out"}, {"max_idle", "5"}, {"max_use", "7"}, {"empty", ""}}},
		},
		{
			name: "stop at the first non-option",
			argv: []string{"scache", "-l", "extra", "-t", "unix"},
			want: &Args{processName: "scache", serviceName: "scache", Alone: true, socketCount: 1, rest: []string{"extra", "-t", "unix"}},
		},
		{
			name: "double dash ends options",
			argv: []string{"scache", "-l", "--", "-t"},
			want: &Args{processName: "scache", serviceName: "scache", Alone: true, socketCount: 1, rest: []string{"-t"}},
		},
		{
			name: "lone dash is an argument",
			argv: []string{"scache", "-", "-l"},
			want: &Args{processName: "scache", serviceName: "scache", socketCount: 1, rest: []string{"-", "-l"}},
		},
		{
			name: "-D and -S",
			argv: []string{"scache", "-DS"},
			want: &Args{processName: "scache", serviceName: "scache", debugger: true, singleStream: true, socketCount: 1},
		},
		{
			name: "socket count as atoi reads it",
			argv: []string{"scache", "-s", " 2x"},
			want: &Args{processName: "scache", serviceName: "scache", socketCount: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.argv)
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.argv, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Args{})); diff != "" {
				t.Errorf("parseArgs(%q) mismatch (-want +got):\n%s", tt.argv, diff)
			}
		})
	}
}

func TestParseArgs_errors(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"scache", "-x"}, "invalid option: x"},
		{[]string{"scache", "-lx"}, "invalid option: x"},
		{[]string{"scache", "-l", "-n"}, "invalid option: n"},
		{[]string{"scache", "-t"}, "invalid option: t"},
		{[]string{"scache", "-:"}, "invalid option: :"},
		{[]string{"scache", "-s", "0"}, "invalid socket_count: 0"},
		{[]string{"scache", "-s", "-1"}, "invalid socket_count: -1"},
		{[]string{"scache", "-s", "x"}, "invalid socket_count: x"},
		{[]string{"scache", "-o", "novalue"}, `invalid "-o novalue" option value: missing '=' after attribute name`},
		{[]string{"scache", "-o", "=x"}, `invalid "-o =x" option value: missing attribute name`},
		{[]string{"scache", "-o", "a b=c"}, `invalid "-o a b=c" option value: missing '=' after attribute name`},
		{[]string{"scache", "-x", "-o", "bad"}, "invalid option: x"}, // first error wins
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseArgs(tt.argv)
			var fe *FatalError
			if !errors.As(err, &fe) {
				t.Fatalf("parseArgs(%q) = %v, want a *FatalError", tt.argv, err)
			}
			if fe.Text != tt.want {
				t.Errorf("parseArgs(%q) text = %q, want %q", tt.argv, fe.Text, tt.want)
			}
		})
	}
}

func TestArgsChecks(t *testing.T) {
	tests := []struct {
		name  string
		argv  []string
		tty   bool
		check func(*Args) error
		want  string // "" = no error
	}{
		{"solitary ok", []string{"scache", "-l", "-t", "unix"}, false, (*Args).checkSolitary, ""},
		{"solitary without -l", []string{"scache", "-t", "unix", "-u", "-c"}, false, (*Args).checkSolitary, "service scache requires a process limit of 1"},
		{"solitary names the service", []string{"goscache", "-n", "cache2", "-t", "unix"}, false, (*Args).checkSolitary, "service cache2 requires a process limit of 1"},
		{"solitary skipped with -S", []string{"scache", "-S"}, false, (*Args).checkSolitary, ""},
		{"transport missing", []string{"scache", "-l"}, false, (*Args).checkTransport, "no transport type specified"},
		{"transport case", []string{"scache", "-l", "-t", "UNIX"}, false, (*Args).checkTransport, ""},
		{"transport inet", []string{"scache", "-l", "-t", "inet"}, false, (*Args).checkTransport, ""},
		{"transport fifo", []string{"scache", "-l", "-t", "fifo"}, false, (*Args).checkTransport, "unsupported transport type: fifo"},
		{"transport skipped with -S", []string{"scache", "-S"}, false, (*Args).checkTransport, ""},
		{"rest", []string{"scache", "-l", "-t", "unix", "foo", "bar"}, false, (*Args).CheckRest, "unexpected command-line argument: foo"},
		{"no rest", []string{"scache", "-l", "-t", "unix"}, false, (*Args).CheckRest, ""},
		{"tty", []string{"scache", "-l", "-t", "unix"}, true, func(a *Args) error { return a.checkStdin(true) }, "do not run this command by hand"},
		{"tty with -d", []string{"scache", "-d", "-l", "-t", "unix"}, true, func(a *Args) error { return a.checkStdin(true) }, ""},
		{"no tty", []string{"scache", "-l", "-t", "unix"}, false, func(a *Args) error { return a.checkStdin(false) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseArgs(tt.argv)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.check(a)
			got := ""
			if fe, ok := errors.AsType[*FatalError](err); ok {
				got = fe.Text
			} else if err != nil {
				t.Fatalf("error %v is not a *FatalError", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitNameValue(t *testing.T) {
	tests := []struct{ in, name, value, why string }{
		{"a=b", "a", "b", ""},
		{"  a  =  b c  ", "a", "b c", ""},
		{"a=", "a", "", ""},
		{"a==b", "a", "=b", ""},
		{"", "", "", "missing attribute name"},
		{"   ", "", "", "missing attribute name"},
		{"=b", "", "", "missing attribute name"},
		{"a", "", "", "missing '=' after attribute name"},
		{"a b", "", "", "missing '=' after attribute name"},
	}
	for _, tt := range tests {
		name, value, why := splitNameValue(tt.in)
		if name != tt.name || value != tt.value || why != tt.why {
			t.Errorf("splitNameValue(%q) = %q, %q, %q; want %q, %q, %q", tt.in, name, value, why, tt.name, tt.value, tt.why)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("scache\x00-l\x00-t\x00unix\x00-u\x00-c")
	f.Add("goscache\x00-l\x00-n\x00scache\x00-t\x00unix\x00-u\x00-c")
	f.Add("scache\x00-lo\x00a=b\x00-s2\x00--\x00x")
	f.Fuzz(func(t *testing.T, s string) {
		argv := splitNUL(s)
		a, err := parseArgs(argv)
		if err != nil {
			if _, ok := errors.AsType[*FatalError](err); !ok {
				t.Fatalf("error %v is not a *FatalError", err)
			}
			return
		}
		if a.socketCount < 1 {
			t.Fatalf("SocketCount = %d", a.socketCount)
		}
		if len(a.rest) > len(argv) {
			t.Fatalf("Rest longer than argv")
		}
	})
}

func splitNUL(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == 0 {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
