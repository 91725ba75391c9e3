package mastercompat

import (
	"path"
	"strings"
)

// Args is the command line that master(8) builds for a multi-server child
// (master/master_ent.c get_master_ent), as parsed by master/multi_server.c
// multi_server_main. Start parses it; a service reads Alone and calls
// CheckRest where it checks its arguments.
type Args struct {
	processName  string     // basename of argv[0]; names the log tag in Postfix
	serviceName  string     // -n NAME, else processName
	chroot       bool       // -c: chroot to queue_directory
	noDetach     bool       // -d: master runs in the foreground; skip the tty check
	debugger     bool       // -D: run debugger_command (not supported, recorded)
	Alone        bool       // -l: process limit 1 (required by solitary services)
	zeroLimit    bool       // -z: process limit 0
	unpriv       bool       // -u: drop privileges to mail_owner
	singleStream bool       // -S: serve one stream on stdin/stdout
	transport    string     // -t TYPE: unix, inet or pass
	verbose      int        // number of -v
	stderr       int        // number of -V: also log to stderr
	socketCount  int        // -s N: number of listen descriptors from fd 6; 1 by default
	overrides    []override // -o name=value, -i (max_idle) and -m (max_use), in order
	rest         []string   // arguments after the options; scache rejects any
}

// override is one main.cf parameter set on the command line.
type override struct {
	Name, Value string
}

// optstring is multi_server_main's getopt string, without the leading '+'
// (stop at the first non-option) that Linux Postfix prepends.
const optstring = "cdDi:lm:n:o:s:St:uvVz"

// parseArgs parses argv (argv[0] included) with the rules of glibc getopt in
// '+' mode: options may be clustered (-lu), an option argument may be glued
// (-nscache) or separate, "--" ends the options, and parsing stops at the
// first argument that is not an option; the rest is kept in Args.Rest.
//
// Errors are [*FatalError]s with multi_server_main's texts: "invalid option:
// X" (unknown option, or an option missing its argument), "invalid
// socket_count: V" and `invalid "-o V" option value: WHY`. Like Postfix,
// parsing stops at the first error.
func parseArgs(argv []string) (*Args, error) {
	a := &Args{socketCount: 1}
	if len(argv) > 0 {
		a.processName = basename(argv[0])
	} else {
		a.processName = "unknown"
	}
	a.serviceName = a.processName
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
	a.rest = append([]string(nil), argv[min(i, len(argv)):]...)
	return a, nil
}

func (a *Args) apply(c byte, optarg string) error {
	switch c {
	case 'c':
		a.chroot = true
	case 'd':
		a.noDetach = true
	case 'D':
		a.debugger = true
	case 'i':
		a.overrides = append(a.overrides, override{"max_idle", optarg})
	case 'l':
		a.Alone = true
	case 'm':
		a.overrides = append(a.overrides, override{"max_use", optarg})
	case 'n':
		a.serviceName = optarg
	case 'o':
		name, value, why := splitNameValue(optarg)
		if why != "" {
			return fatalf("invalid \"-o %s\" option value: %s", optarg, why)
		}
		a.overrides = append(a.overrides, override{name, value})
	case 's':
		n := atoi(optarg)
		if n <= 0 {
			return fatalf("invalid socket_count: %s", optarg)
		}
		a.socketCount = n
	case 'S':
		a.singleStream = true
	case 't':
		a.transport = optarg
	case 'u':
		a.unpriv = true
	case 'v':
		a.verbose++
	case 'V':
		a.stderr++
	case 'z':
		a.zeroLimit = true
	}
	return nil
}

// checkStdin reproduces the "do not run this command by hand" check: a
// daemon whose stdin is a terminal refuses to start unless -d or -S was
// given.
func (a *Args) checkStdin(stdinIsTTY bool) error {
	if stdinIsTTY && !a.noDetach && !a.singleStream {
		return fatalf("do not run this command by hand")
	}
	return nil
}

// checkSolitary fails unless master passed -l, as a service registered with
// CA_MAIL_SERVER_SOLITARY requires: the cache lives in one process.
func (a *Args) checkSolitary() error {
	if !a.singleStream && !a.Alone {
		return fatalf("service %s requires a process limit of 1", a.serviceName)
	}
	return nil
}

// checkTransport fails when -t is missing or names a transport this package
// cannot serve. Postfix accepts unix, inet and pass (case-insensitively);
// "pass" (descriptors handed over by master) is not supported here and is
// reported as unsupported.
func (a *Args) checkTransport() error {
	if a.singleStream {
		return nil
	}
	switch {
	case a.transport == "":
		return fatalf("no transport type specified")
	case strings.EqualFold(a.transport, "unix"), strings.EqualFold(a.transport, "inet"):
		return nil
	}
	return fatalf("unsupported transport type: %s", a.transport)
}

// CheckRest fails on the first leftover argument with scache's text
// "unexpected command-line argument: ARG".
func (a *Args) CheckRest() error {
	if len(a.rest) > 0 {
		return fatalf("unexpected command-line argument: %s", a.rest[0])
	}
	return nil
}

// splitNameValue splits "name = value" as util/split_nameval.c does:
// white space around the name and the value is dropped. why is Postfix's
// complaint ("missing attribute name", "missing '=' after attribute name")
// or empty on success.
func splitNameValue(s string) (name, value, why string) {
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
