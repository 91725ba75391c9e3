// Package pfx creates and drives private Postfix instances for the
// compatibility suite: each instance has its own configuration directory,
// queue directory, data directory, daemon directory and log file under one
// root directory, no inet listener (mail enters through sendmail -C), no DNS
// (transport maps name [127.0.0.x]:port next hops) and maillog_file logging
// through postlogd. The default instance (/etc/postfix) is never touched.
//
// The daemon directory is a private copy of Debian's /usr/lib/postfix/sbin,
// so that a replacement scache binary can be installed into it and named in
// master.cf exactly as an operator would, without changing the system.
package pfx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Debian installation.
const (
	DefaultDaemonDir  = "/usr/lib/postfix/sbin"
	DefaultCommandDir = "/usr/sbin"
)

// Options describe an instance. Zero values mean Debian's defaults.
type Options struct {
	// Root is the directory holding everything of the instance; it must
	// not exist yet or be empty.
	Root string
	// DaemonDir is where Postfix's daemons are installed
	// (/usr/lib/postfix/sbin).
	DaemonDir string
	// CommandDir holds postfix, postconf, sendmail, postqueue (/usr/sbin).
	CommandDir string
	// Scache, when set, is a binary copied into the instance's daemon
	// directory as "goscache" and named as the command of master.cf's
	// scache line instead of Postfix's scache.
	Scache string
	// Main holds main.cf settings added to (or replacing) the suite's base.
	Main map[string]string
	// Transports maps a domain to a transport:nexthop, e.g.
	// "smtp:[127.0.0.10]:2525".
	Transports map[string]string
	// SystemDaemonDir makes DaemonDir itself the instance's
	// daemon_directory: nothing is copied, and Scache, when set, must be a
	// file in DaemonDir (where goscache's Debian package installs it),
	// named in master.cf by its base name. A package upgrade then changes
	// the daemon the instance runs, as on an installed system.
	SystemDaemonDir bool
	// MasterCF is appended to the instance's master.cf (services of its
	// own, such as an smtpd listener or a second smtp transport).
	MasterCF string
}

// Instance is one Postfix instance. Its methods run Postfix commands and
// are not safe for concurrent use with Stop.
type Instance struct {
	Root       string
	ConfigDir  string
	QueueDir   string
	DataDir    string
	DaemonDir  string // the instance's private daemon directory
	LogFile    string
	commandDir string
}

// Create lays out an instance under opts.Root. It does not start it.
func Create(ctx context.Context, opts Options) (*Instance, error) {
	if opts.DaemonDir == "" {
		opts.DaemonDir = DefaultDaemonDir
	}
	if opts.CommandDir == "" {
		opts.CommandDir = DefaultCommandDir
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("pfx: %w", err)
	}
	in := &Instance{
		Root:       root,
		ConfigDir:  filepath.Join(root, "etc"),
		QueueDir:   filepath.Join(root, "queue"),
		DataDir:    filepath.Join(root, "data"),
		DaemonDir:  filepath.Join(root, "libexec"),
		LogFile:    filepath.Join(root, "log", "maillog"),
		commandDir: opts.CommandDir,
	}
	if err := in.makeDirs(); err != nil {
		return nil, err
	}
	raiseDgramQueue()
	scacheCmd, err := in.copyDaemons(opts)
	if err != nil {
		return nil, err
	}
	if err := in.writeMainCF(opts); err != nil {
		return nil, err
	}
	master := fmt.Sprintf(masterCF, scacheCmd) + opts.MasterCF
	if err := os.WriteFile(filepath.Join(in.ConfigDir, "master.cf"), []byte(master), 0o644); err != nil {
		return nil, fmt.Errorf("pfx: %w", err)
	}
	if out, err := in.Postfix(ctx, "check"); err != nil {
		return nil, fmt.Errorf("pfx: postfix check: %w: %s", err, out)
	}
	return in, nil
}

// DgramQueue is the length to which Create raises the network namespace's
// net.unix.max_dgram_qlen (the kernel's default is 10).
//
// The instances log through postlogd (maillog_file): every process,
// master(8) included, sends its log records to the postlog socket, whose
// queue holds max_dgram_qlen records, and master spawns postlogd when that
// socket becomes readable. After postfix reload the old postlogd exits; if
// more than ten records arrive before master spawns the next one (smtp(8)
// processes warning all at once, as during a squeeze) and master itself
// logs, master blocks in sendto on a socket only its own child can drain,
// forever: a Postfix deadlock with maillog_file, seen in a soak at
// 05:22 on 2026-12-07 (master in unix_wait_for_peer, no children left
// running, the log ending at the reload). A queue of DgramQueue records
// makes that wait end as soon as master gets back to its event loop.
const DgramQueue = 1024

// raiseDgramQueue raises net.unix.max_dgram_qlen to DgramQueue where this
// process may (root, a writable /proc/sys; a container shares the host's
// network namespace and leaves it to compat-tests/docker.sh). Sockets
// created later (master's postlog socket) get the new length.
func raiseDgramQueue() {
	const path = "/proc/sys/net/unix/max_dgram_qlen"
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n < DgramQueue {
		_ = os.WriteFile(path, []byte(strconv.Itoa(DgramQueue)), 0o644) // best effort: see DgramQueue
	}
}

// makeDirs creates the instance's directories, open to mail_owner, whose
// Postfix daemons must also traverse every parent.
func (in *Instance) makeDirs() error {
	pw, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("pfx: mail_owner: %w", err)
	}
	uid, _ := strconv.Atoi(pw.Uid)
	gid, _ := strconv.Atoi(pw.Gid)
	// Postfix daemons running as postfix must traverse every parent.
	for d := in.Root; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("pfx: %w", err)
			}
		}
	}
	for _, d := range []string{in.Root, in.ConfigDir, in.QueueDir, in.DataDir, in.DaemonDir, filepath.Dir(in.LogFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("pfx: %w", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("pfx: %w", err)
		}
	}
	if err := os.Chown(in.DataDir, uid, gid); err != nil {
		return fmt.Errorf("pfx: %w", err)
	}
	return nil
}

// copyDaemons copies Postfix's daemons into the instance, and goscache
// when opts.Scache names it; it returns the scache service's command.
func (in *Instance) copyDaemons(opts Options) (scacheCmd string, err error) {
	if opts.SystemDaemonDir {
		in.DaemonDir = opts.DaemonDir
		if opts.Scache == "" {
			return "scache", nil
		}
		if filepath.Dir(opts.Scache) != filepath.Clean(opts.DaemonDir) {
			return "", fmt.Errorf("pfx: %s is not in the daemon directory %s", opts.Scache, opts.DaemonDir)
		}
		return filepath.Base(opts.Scache), nil
	}
	// A copy, not symlinks: postfix-script warns about symlinks that leave
	// the daemon directory. The binaries find their libraries through
	// RUNPATH /usr/lib/postfix.
	ents, err := os.ReadDir(opts.DaemonDir)
	if err != nil {
		return "", fmt.Errorf("pfx: daemon directory: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if err := copyFile(filepath.Join(opts.DaemonDir, e.Name()), filepath.Join(in.DaemonDir, e.Name())); err != nil {
			return "", err
		}
	}
	scacheCmd = "scache"
	if opts.Scache != "" {
		if err := copyFile(opts.Scache, filepath.Join(in.DaemonDir, "goscache")); err != nil {
			return "", err
		}
		scacheCmd = "goscache"
	}
	return scacheCmd, nil
}

// writeMainCF writes the instance's main.cf: the settings every compat
// instance needs, opts.Transports, then opts.Main.
func (in *Instance) writeMainCF(opts Options) error {
	main := map[string]string{
		"compatibility_level":                 "3.6",
		"config_directory":                    in.ConfigDir,
		"queue_directory":                     in.QueueDir,
		"data_directory":                      in.DataDir,
		"daemon_directory":                    in.DaemonDir,
		"command_directory":                   opts.CommandDir,
		"mail_owner":                          "postfix",
		"setgid_group":                        "postdrop",
		"myhostname":                          "compat.test",
		"mydomain":                            "compat.test",
		"myorigin":                            "compat.test",
		"mydestination":                       "",
		"local_recipient_maps":                "",
		"alias_maps":                          "",
		"alias_database":                      "",
		"inet_interfaces":                     "loopback-only",
		"inet_protocols":                      "ipv4",
		"maillog_file":                        in.LogFile,
		"maillog_file_prefixes":               filepath.Dir(in.LogFile),
		"smtp_dns_support_level":              "disabled",
		"smtp_host_lookup":                    "native",
		"relayhost":                           "",
		"default_transport":                   "error:no route in the compat instance",
		"queue_run_delay":                     "1s",
		"minimal_backoff_time":                "1s",
		"maximal_backoff_time":                "2s",
		"delay_warning_time":                  "0",
		"biff":                                "no",
		"append_dot_mydomain":                 "no",
		"smtp_tls_security_level":             "none",
		"smtp_tls_loglevel":                   "0",
		"connection_cache_status_update_time": "1s",
		"service_throttle_time":               "1s",
		"tls_random_source":                   "dev:/dev/urandom",
	}
	if len(opts.Transports) > 0 {
		var b strings.Builder
		b.WriteString("inline:{")
		for i, d := range slices.Sorted(maps.Keys(opts.Transports)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{ %s = %s }", d, opts.Transports[d])
		}
		b.WriteString(" }")
		main["transport_maps"] = b.String()
	}
	maps.Copy(main, opts.Main)
	var mb strings.Builder
	mb.WriteString("# compat-tests instance (generated)\n")
	for _, k := range slices.Sorted(maps.Keys(main)) {
		fmt.Fprintf(&mb, "%s = %s\n", k, main[k])
	}
	if err := os.WriteFile(filepath.Join(in.ConfigDir, "main.cf"), []byte(mb.String()), 0o644); err != nil {
		return fmt.Errorf("pfx: %w", err)
	}
	return nil
}

// Open returns the Instance of an existing configuration directory, for
// example the default instance's /etc/postfix, without changing anything:
// its directories and maillog_file are read with postconf, so main.cf must
// exist. Root is empty, and DaemonDir is the instance's daemon_directory.
func Open(ctx context.Context, configDir, commandDir string) (*Instance, error) {
	if commandDir == "" {
		commandDir = DefaultCommandDir
	}
	in := &Instance{ConfigDir: configDir, commandDir: commandDir}
	out, err := in.command(ctx, "postconf", "-c", configDir, "-h",
		"queue_directory", "data_directory", "daemon_directory", "maillog_file").Output()
	if err != nil {
		return nil, fmt.Errorf("pfx: postconf: %w", err)
	}
	v := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(v) != 4 {
		return nil, fmt.Errorf("pfx: postconf: unexpected output %q", out)
	}
	in.QueueDir, in.DataDir, in.DaemonDir, in.LogFile = v[0], v[1], v[2], v[3]
	return in, nil
}

// masterCF has no inet service: mail enters through sendmail/postdrop.
// Everything but scache runs unchrooted so that no files need copying into
// the queue directory; scache keeps Debian's chroot (y) so a replacement is
// tested the way Debian runs it.
const masterCF = `# compat-tests instance (generated)
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
tlsproxy  unix  -       -       n       -       0       tlsproxy
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       y       -       1       %s
postlog   unix-dgram n  -       n       -       1       postlogd
`

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("pfx: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("pfx: %w", err)
	}
	os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("pfx: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("pfx: copy %s: %w", src, err)
	}
	return out.Close()
}

func (in *Instance) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(in.commandDir, name), args...)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+in.ConfigDir)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Postfix runs "postfix -c ConfigDir args..." and returns its output.
func (in *Instance) Postfix(ctx context.Context, args ...string) ([]byte, error) {
	return in.command(ctx, "postfix", append([]string{"-c", in.ConfigDir}, args...)...).CombinedOutput()
}

// Postconf runs "postconf -c ConfigDir args...".
func (in *Instance) Postconf(ctx context.Context, args ...string) ([]byte, error) {
	return in.command(ctx, "postconf", append([]string{"-c", in.ConfigDir}, args...)...).CombinedOutput()
}

// Postsuper runs "postsuper -c ConfigDir args..." (for example -H ALL,
// which releases the mail on hold).
func (in *Instance) Postsuper(ctx context.Context, args ...string) ([]byte, error) {
	return in.command(ctx, "postsuper", append([]string{"-c", in.ConfigDir}, args...)...).CombinedOutput()
}

// Start starts the instance.
func (in *Instance) Start(ctx context.Context) error {
	if out, err := in.Postfix(ctx, "start"); err != nil {
		return fmt.Errorf("pfx: postfix start: %w: %s", err, out)
	}
	return nil
}

// Stop stops the instance; stopping one that is not running is no error.
// It stops it even when ctx is already done (a test's context is canceled
// before its cleanups run, and a canceled "postfix status" would read as
// "not running" and leave master behind): ctx gives only the values.
func (in *Instance) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := in.Postfix(ctx, "status"); err != nil {
		return nil
	}
	if out, err := in.Postfix(ctx, "stop"); err != nil {
		return fmt.Errorf("pfx: postfix stop: %w: %s", err, out)
	}
	// postfix stop returns before master has gone.
	pidFile := filepath.Join(in.QueueDir, "pid", "master.pid")
	for range 100 {
		if _, err := in.Postfix(ctx, "status"); err != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("pfx: master still running (%s)", pidFile)
}

// Reload runs postfix reload.
func (in *Instance) Reload(ctx context.Context) error {
	if out, err := in.Postfix(ctx, "reload"); err != nil {
		return fmt.Errorf("pfx: postfix reload: %w: %s", err, out)
	}
	return nil
}

// Send submits one message through sendmail -C. messageID is written as
// the Message-ID header (without angle brackets).
func (in *Instance) Send(ctx context.Context, from, to, subject, messageID string) error {
	cmd := in.command(ctx, "sendmail", "-C", in.ConfigDir, "-f", from, "--", to)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("From: <%s>\nTo: <%s>\nSubject: %s\nMessage-ID: <%s>\n\ncompat test message %s\n",
		from, to, subject, messageID, messageID))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pfx: sendmail: %w: %s", err, out)
	}
	return nil
}

// QueueCount returns the number of messages in the instance's queues.
func (in *Instance) QueueCount() (int, error) {
	n := 0
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		err := filepath.WalkDir(filepath.Join(in.QueueDir, q), func(_ string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				n++
			}
			return nil
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("pfx: %w", err)
		}
	}
	return n, nil
}

// Flush runs postqueue -f: the queue manager retries every queued message
// now, whatever its queue file's time stamp says.
func (in *Instance) Flush(ctx context.Context) error {
	if out, err := in.command(ctx, "postqueue", "-c", in.ConfigDir, "-f").CombinedOutput(); err != nil {
		return fmt.Errorf("pfx: postqueue -f: %w: %s", err, out)
	}
	return nil
}

// LogSize returns the current size of the log file, an offset for LogSince.
func (in *Instance) LogSize() int64 {
	fi, err := os.Stat(in.LogFile)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LogSince returns the log lines written after offset.
func (in *Instance) LogSince(offset int64) ([]LogLine, error) {
	f, err := os.Open(in.LogFile)
	if err != nil {
		return nil, fmt.Errorf("pfx: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("pfx: %w", err)
	}
	var lines []LogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l, ok := parseLogLine(sc.Text()); ok {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

// MasterPid returns the pid of the instance's master(8) from its pid
// file, or 0 when it is not running.
func (in *Instance) MasterPid() int {
	b, err := os.ReadFile(filepath.Join(in.QueueDir, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Pids returns the pids of the instance's master(8) children that run the
// command name (their comm, the base name of the file master executed).
// It reads only /proc/PID/comm and /proc/PID/stat, which every user may
// read: /proc/PID/exe of another user's process needs CAP_SYS_PTRACE,
// which a Docker container's root does not have.
func (in *Instance) Pids(name string) []int {
	master := in.MasterPid()
	if master == 0 {
		return nil
	}
	var pids []int
	for _, pid := range ProcsNamed(name) {
		if ParentPid(pid) == master {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ProcsNamed returns the pids of the processes whose comm is name.
func ProcsNamed(name string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if c, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil && strings.TrimSpace(string(c)) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ParentPid returns the parent of pid from /proc/PID/stat, or -1.
func ParentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return ppid
}

// LogLine is one maillog line.
type LogLine struct {
	Raw     string
	Program string // "smtp", "scache", "goscache", "master", ...
	Pid     int
	Text    string // after "tag[pid]: "
}

// parseLogLine splits "Mmm dd hh:mm:ss host syslog_name/program[pid]: text"
// (postlogd writes a zero-padded day, syslog a space-padded one).
func parseLogLine(s string) (LogLine, bool) {
	m := logLineRE.FindStringSubmatch(s)
	if m == nil {
		return LogLine{Raw: s}, false
	}
	l := LogLine{Raw: s, Program: m[1], Text: m[3]}
	l.Program = l.Program[strings.LastIndexByte(l.Program, '/')+1:]
	l.Pid, _ = strconv.Atoi(m[2])
	return l, true
}

var logLineRE = regexp.MustCompile(`^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} \S+ ([^\s\[]+)(?:\[([0-9]+)\])?: (.*)$`)

// Stats are the scache statistics lines added up.
type Stats struct {
	DestHits, DestMiss int
	EndpHits, EndpMiss int
	MaxDests, MaxEndps int
	MaxSessions        int
	Lines              int // statistics lines seen
}

// ParseStats adds up the statistics lines logged by programs.
func ParseStats(lines []LogLine, programs ...string) Stats {
	var s Stats
	for _, l := range lines {
		if !slices.Contains(programs, l.Program) {
			continue
		}
		t, ok := strings.CutPrefix(l.Text, "statistics: ")
		if !ok {
			continue
		}
		s.Lines++
		var h, m, p, a, b, c int
		switch {
		case strings.HasPrefix(t, "domain lookup"):
			if _, err := fmt.Sscanf(t, "domain lookup hits=%d miss=%d success=%d%%", &h, &m, &p); err == nil {
				s.DestHits += h
				s.DestMiss += m
			}
		case strings.HasPrefix(t, "address lookup"):
			if _, err := fmt.Sscanf(t, "address lookup hits=%d miss=%d success=%d%%", &h, &m, &p); err == nil {
				s.EndpHits += h
				s.EndpMiss += m
			}
		case strings.HasPrefix(t, "max simultaneous"):
			if _, err := fmt.Sscanf(t, "max simultaneous domains=%d addresses=%d connection=%d", &a, &b, &c); err == nil {
				s.MaxDests = max(s.MaxDests, a)
				s.MaxEndps = max(s.MaxEndps, b)
				s.MaxSessions = max(s.MaxSessions, c)
			}
		}
	}
	return s
}

// Problems returns the warning:, fatal:, panic: and error: lines logged by
// programs.
func Problems(lines []LogLine, programs ...string) []string {
	var p []string
	for _, l := range lines {
		if !slices.Contains(programs, l.Program) {
			continue
		}
		for _, pre := range []string{"warning: ", "fatal: ", "panic: ", "error: "} {
			if strings.HasPrefix(l.Text, pre) {
				p = append(p, l.Raw)
				break
			}
		}
	}
	return p
}

// Grep returns the lines of programs whose text contains substr.
func Grep(lines []LogLine, substr string, programs ...string) []string {
	var out []string
	for _, l := range lines {
		if (len(programs) == 0 || slices.Contains(programs, l.Program)) && strings.Contains(l.Text, substr) {
			out = append(out, l.Raw)
		}
	}
	return out
}
