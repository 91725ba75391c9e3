package mastercompat

import (
	"path"
	"strings"
)

// Args is the command line that master(8) builds for a multi-server child
// (master/master_ent.c get_master_ent), as parsed by master/multi_server.c
// multi_server_main. The zero value is not meaningful; use [ParseArgs].
type Args struct {
	ProcessName  string     // basename of argv[0]; names the log tag in Postfix
	ServiceName  string     // -n NAME, else ProcessName
	Chroot       bool       // -c: chroot to queue_directory
	NoDetach     bool       // -d: master runs in the foreground; skip the tty check
	Debugger     bool       // -D: run debugger_command (not supported, recorded)
	Alone        bool       // -l: process limit 1 (required by solitary services)
	ZeroLimit    bool       // -z: process limit 0
	Unpriv       bool       // -u: drop privileges to mail_owner
	SingleStream bool       // -S: serve one stream on stdin/stdout
	Transport    string     // -t TYPE: unix, inet or pass
	Verbose      int        // number of -v
	Stderr       int        // number of -V: also log to stderr
	SocketCount  int        // -s N: number of listen descriptors from fd 6; 1 by default
	Overrides    []Override // -o name=value, -i (max_idle) and -m (max_use), in order
	Rest         []string   // arguments after the options; scache rejects any
}

// Override is one main.cf parameter set on the command line.
type Override struct {
	Name, Value string
}

// optstring is multi_server_main's getopt string, without the leading '+'
// (stop at the first non-option) that Linux Postfix prepends.
const optstring = "cdDi:lm:n:o:s:St:uvVz"

// ParseArgs parses argv (argv[0] included) with the rules of glibc getopt in
// '+' mode: options may be clustered (-lu), an option argument may be glued
// (-nscache) or separate, "--" ends the options, and parsing stops at the
// first argument that is not an option; the rest is kept in Args.Rest.
//
// Errors are [*FatalError]s with multi_server_main's texts: "invalid option:
// X" (unknown option, or an option missing its argument), "invalid
// socket_count: V" and `invalid "-o V" option value: WHY`. Like Postfix,
// parsing stops at the first error.
func ParseArgs(argv []string) (*Args, error) {
	a := &Args{SocketCount: 1}
	if len(argv) > 0 {
		a.ProcessName = basename(argv[0])
	} else {
		a.ProcessName = "unknown"
	}
	a.ServiceName = a.ProcessName
	i := 1
	for i < len(argv) {
		arg := argv[i]
		if arg == "--" {
			i++
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			break
		}
		i++
		for j := 1; j < len(arg); j++ {
			c := arg[j]
			k := strings.IndexByte(optstring, c)
			if k < 0 || c == ':' {
				return nil, fatalf("invalid option: %c", c)
			}
			var optarg string
			if k+1 < len(optstring) && optstring[k+1] == ':' {
				switch {
				case j+1 < len(arg):
					optarg = arg[j+1:]
				case i < len(argv):
					optarg = argv[i]
					i++
				default:
					return nil, fatalf("invalid option: %c", c)
				}
				j = len(arg)
			}
			if err := a.apply(c, optarg); err != nil {
				return nil, err
			}
		}
	}
	a.Rest = append([]string(nil), argv[min(i, len(argv)):]...)
	return a, nil
}

func (a *Args) apply(c byte, optarg string) error {
	switch c {
	case 'c':
		a.Chroot = true
	case 'd':
		a.NoDetach = true
	case 'D':
		a.Debugger = true
	case 'i':
		a.Overrides = append(a.Overrides, Override{"max_idle", optarg})
	case 'l':
		a.Alone = true
	case 'm':
		a.Overrides = append(a.Overrides, Override{"max_use", optarg})
	case 'n':
		a.ServiceName = optarg
	case 'o':
		name, value, why := SplitNameValue(optarg)
		if why != "" {
			return fatalf("invalid \"-o %s\" option value: %s", optarg, why)
		}
		a.Overrides = append(a.Overrides, Override{name, value})
	case 's':
		n := atoi(optarg)
		if n <= 0 {
			return fatalf("invalid socket_count: %s", optarg)
		}
		a.SocketCount = n
	case 'S':
		a.SingleStream = true
	case 't':
		a.Transport = optarg
	case 'u':
		a.Unpriv = true
	case 'v':
		a.Verbose++
	case 'V':
		a.Stderr++
	case 'z':
		a.ZeroLimit = true
	}
	return nil
}

// CheckStdin reproduces the "do not run this command by hand" check: a
// daemon whose stdin is a terminal refuses to start unless -d or -S was
// given.
func (a *Args) CheckStdin(stdinIsTTY bool) error {
	if stdinIsTTY && !a.NoDetach && !a.SingleStream {
		return fatalf("do not run this command by hand")
	}
	return nil
}

// CheckSolitary fails unless master passed -l, as a service registered with
// CA_MAIL_SERVER_SOLITARY requires: the cache lives in one process.
func (a *Args) CheckSolitary() error {
	if !a.SingleStream && !a.Alone {
		return fatalf("service %s requires a process limit of 1", a.ServiceName)
	}
	return nil
}

// CheckTransport fails when -t is missing or names a transport this package
// cannot serve. Postfix accepts unix, inet and pass (case-insensitively);
// "pass" (descriptors handed over by master) is not supported here and is
// reported as unsupported.
func (a *Args) CheckTransport() error {
	if a.SingleStream {
		return nil
	}
	switch {
	case a.Transport == "":
		return fatalf("no transport type specified")
	case strings.EqualFold(a.Transport, "unix"), strings.EqualFold(a.Transport, "inet"):
		return nil
	}
	return fatalf("unsupported transport type: %s", a.Transport)
}

// CheckRest fails on the first leftover argument with scache's text
// "unexpected command-line argument: ARG".
func (a *Args) CheckRest() error {
	if len(a.Rest) > 0 {
		return fatalf("unexpected command-line argument: %s", a.Rest[0])
	}
	return nil
}

// SplitNameValue splits "name = value" as util/split_nameval.c does:
// white space around the name and the value is dropped. why is Postfix's
// complaint ("missing attribute name", "missing '=' after attribute name")
// or empty on success.
func SplitNameValue(s string) (name, value, why string) {
	s = strings.TrimLeft(s, spaceChars)
	if s == "" || s[0] == '=' {
		return "", "", "missing attribute name"
	}
	end := strings.IndexAny(s, spaceChars+"=")
	if end < 0 {
		return "", "", "missing '=' after attribute name"
	}
	name = s[:end]
	rest := strings.TrimLeft(s[end:], spaceChars)
	if rest == "" || rest[0] != '=' {
		return "", "", "missing '=' after attribute name"
	}
	value = strings.Trim(rest[1:], spaceChars)
	return name, value, ""
}

// spaceChars is what C's isspace() accepts in the "C" locale.
const spaceChars = " \t\n\v\f\r"

// basename is Postfix's basename(): the text after the last '/', unless
// that is empty.
func basename(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 && i+1 < len(p) {
		return p[i+1:]
	}
	if p == "" {
		return p
	}
	return path.Base(p)
}

// atoi is C's atoi: optional white space and sign, then digits up to the
// first non-digit; 0 when there are none. Overflow saturates.
func atoi(s string) int {
	s = strings.TrimLeft(s, spaceChars)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n > (1<<31-1)/10 {
			n = 1<<31 - 1
			break
		}
		n = n*10 + int(s[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}
