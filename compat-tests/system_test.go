//go:build compat

package compattest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goscache/goscache/compat-tests/pfx"
	"github.com/goscache/goscache/compat-tests/sink"
)

// TestSystemInstall is issues 4's and 12's "done means" on the machine's
// own Postfix, the default instance in /etc/postfix: goscache installed from
// its Debian package (dpkg -i), master.cf switched each of the two ways
// docs/operator.md tells operators, postfix start, mail delivered over
// reused connections and goscache's statistics in the log; the package's
// exporter (scachectl metrics) scraped with curl during the run and
// checked against the statistics lines, the sink and promtool; switched
// back, then dpkg --purge, after which no file of the package remains. It changes the system, so it runs
// only with COMPAT_SYSTEM=1, which the Docker image of make compat-docker
// sets; the native make compat skips it and keeps to private instances.
//
// It expects a fresh machine as compat-tests/setup.sh leaves it (Debian's
// package with debconf's "No configuration": master.cf but no main.cf) and
// restores that state afterwards, so it can run again in the same
// container.
func TestSystemInstall(t *testing.T) {
	bin, origMaster := requireFreshSystem(t)
	ctx := t.Context()
	postconf := filepath.Join(*flagCommandDir, "postconf")
	mainCF := filepath.Join(systemConfigDir, "main.cf")
	masterCF := filepath.Join(systemConfigDir, "master.cf")

	// 1. The Debian package (make deb; docker.sh stages it next to the
	// binary). daemon_directory as postconf reports it, with make
	// install's fallback: without main.cf postconf fails.
	deb := debPackage(t, bin)
	daemonDir := pfx.DefaultDaemonDir
	if out, err := exec.CommandContext(ctx, postconf, "-h", "daemon_directory").Output(); err == nil {
		daemonDir = strings.TrimSpace(string(out))
	}
	installed := filepath.Join(daemonDir, "goscache")
	if _, err := os.Stat(installed); err == nil {
		t.Fatalf("%s exists before the package is installed: this test wants a machine without goscache", installed)
	}
	if err := exec.CommandContext(ctx, "dpkg", "-s", "goscache").Run(); err == nil {
		t.Fatal("the goscache package is installed already: this test wants a machine without it")
	}
	pkgFiles := installDeb(t, deb, installed)
	purged := false
	// Runs after the files are restored (cleanups run last first): a
	// failed run still leaves the machine without the package.
	t.Cleanup(func() {
		if !purged {
			exec.Command("dpkg", "--purge", "goscache").Run()
		}
	})

	// Restore the machine as we found it, even after a failure; runs last
	// (after postfix stop below).
	t.Cleanup(func() {
		if err := os.WriteFile(masterCF, origMaster, 0o644); err != nil {
			t.Errorf("restore %s: %v", masterCF, err)
		}
		if err := os.Remove(mainCF); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("remove %s: %v", mainCF, err)
		}
		if t.Failed() || *flagKeep {
			t.Logf("system log kept in %s", systemLogFile)
		} else {
			os.Remove(systemLogFile)
		}
	})

	// 2. A minimal main.cf: loopback only, no DNS, no local delivery,
	// every message of the test domain to the sink, caching always on for
	// it, statistics every second, logging through postlogd to a file.
	// master_service_disable keeps master from binding 127.0.0.1:25 (the
	// smtpd line of Debian's master.cf): with --network host that port is
	// the host's.
	if err := os.WriteFile(mainCF, []byte(systemMainCF()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, postconf, "-M", "postlog/unix-dgram").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("postlogd")) {
		t.Fatalf("maillog_file needs master.cf's postlog service (postlogd); postconf -M postlog/unix-dgram: %v: %q", err, out)
	}

	// Way 1: replace the scache daemon.
	runCmd(t, postconf, "-F", "scache/unix/command = goscache")
	if out := runCmd(t, postconf, "-M", "scache/unix"); !strings.HasSuffix(strings.TrimSpace(out), " goscache") {
		t.Fatalf("postconf -M scache/unix after the switch: %q", out)
	}
	checkQuiet(t)

	in, err := pfx.Open(ctx, systemConfigDir, *flagCommandDir)
	if err != nil {
		t.Fatal(err)
	}
	if in.DaemonDir != daemonDir || in.LogFile != systemLogFile {
		t.Fatalf("postconf: daemon_directory %s, maillog_file %s; want %s, %s", in.DaemonDir, in.LogFile, daemonDir, systemLogFile)
	}
	if _, err := in.Postfix(ctx, "status"); err == nil {
		t.Fatal("the default instance is already running")
	}
	sk, err := sink.Start(sink.Config{
		Addrs:  []string{fmt.Sprintf("%s:%d", systemSinkHost, systemSinkPort())},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close() })

	off := in.LogSize()
	if err := in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// 4. Stopped before the files are restored (cleanups run last first).
	t.Cleanup(func() {
		if err := in.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	// The package's exporter, on the socket of way 1 (and of way 1's
	// switch back), for the whole run: it must survive master restarting
	// the cache daemon behind it.
	exp := startExporter(t, filepath.Join(in.QueueDir, "private", "scache"))
	way1 := systemWay(ctx, t, in, sk, off, "way1", "scache", nil)
	checkMetrics(t, exp, in, off, way1)

	// Way 2: the scache line back as it was, goscache as a service of its
	// own, smtp(8) pointed at it (Makefile install's text, docs/operator.md).
	runCmd(t, postconf, "-F", "scache/unix/command = scache")
	runCmd(t, postconf, "-M", "goscache/unix = goscache unix - - y - 1 goscache")
	runCmd(t, postconf, "-e", "connection_cache_service_name = goscache")
	checkQuiet(t)
	off = in.LogSize()
	if err := in.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// Let master restart its children with the new configuration, as
	// runScenario does after a reload.
	time.Sleep(1500 * time.Millisecond)
	sk.Reset()
	way2 := systemWay(ctx, t, in, sk, off, "way2", "goscache", way1.pids)

	// prerm warns, and succeeds, while master.cf runs goscache.
	prerm := "/var/lib/dpkg/info/goscache.prerm"
	if out := runCmd(t, prerm, "remove"); !strings.Contains(out, "warning: master.cf still runs goscache") {
		t.Errorf("%s remove with goscache in master.cf: no warning in %q", prerm, out)
	}

	// Switch back (docs/operator.md, way 2), then the exporter, still on
	// private/scache, finds Postfix's own scache there.
	runCmd(t, postconf, "-e", "connection_cache_service_name = scache")
	runCmd(t, postconf, "-MX", "goscache/unix")
	checkQuiet(t)
	if err := in.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	checkMetricsPostfix(t, exp)
	if out := runCmd(t, prerm, "remove"); out != "" {
		t.Errorf("%s remove after switching back printed %q", prerm, out)
	}

	if err := in.Stop(ctx); err != nil {
		t.Error(err)
	}
	purgeDeb(t, pkgFiles)
	purged = true
	fmt.Fprintf(os.Stdout, "\n== compat: system install (%s, %s from %s): %s; %s; purged, %d files gone\n",
		systemConfigDir, installed, filepath.Base(deb), way1, way2, len(pkgFiles))
}

const (
	systemConfigDir = "/etc/postfix"
	systemLogFile   = "/var/log/goscache-compat-system.log"
	// The sink of this test: away from TestEndToEnd's 127.0.0.10-19.
	systemSinkHost = "127.0.0.30"
	systemDomain   = "system.test"
	systemMessages = 20
)

// systemSinkPort is the third of the suite's ports (-compat.port + 2).
func systemSinkPort() int { return *flagPort + 2 }

func systemMainCF() string {
	return `# goscache compat-tests TestSystemInstall (generated; removed after the test)
compatibility_level = 3.6
myhostname = compat.test
mydomain = compat.test
myorigin = compat.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
master_service_disable = inet
maillog_file = ` + systemLogFile + `
smtp_dns_support_level = disabled
relayhost =
default_transport = error:no route in the compat test
transport_maps = inline:{ { ` + systemDomain + ` = smtp:[` + systemSinkHost + `]:` + fmt.Sprint(systemSinkPort()) + ` } }
smtp_connection_cache_destinations = ` + systemSinkHost + `
connection_cache_status_update_time = 1s
smtp_tls_security_level = none
biff = no
append_dot_mydomain = no
`
}

// systemResult is what one way delivered.
type systemResult struct {
	way        string
	tag        string // log tag of the cache daemon
	sent       int
	counts     sink.Counts
	reused     int // deliveries over a cached connection (conn_use >= 2)
	stats      pfx.Stats
	pids       []int
	statsLines []string
}

func (r systemResult) String() string {
	return fmt.Sprintf("%s: %d messages, %d TCP connections, %d reused, %d statistics lines from postfix/%s%v (goscache)",
		r.way, r.counts.Messages, r.counts.Conns, r.reused, r.stats.Lines, r.tag, r.pids)
}

// systemWay sends systemMessages messages through the running default
// instance and checks that the sink got each once over fewer connections,
// that the cache daemon logging as postfix/<program> is the installed
// goscache and logged statistics, that real scache never ran, and that
// smtp, master, postlogd and the cache daemon logged no problem. prev are
// the pids of the previous way's goscache, which may still log as
// postfix/scache while it exits.
func systemWay(ctx context.Context, t *testing.T, in *pfx.Instance, sk *sink.Sink, off int64, way, program string, prev []int) systemResult {
	t.Helper()
	r := systemResult{way: way, tag: program}
	var ids []string
	for i := range systemMessages {
		id := fmt.Sprintf("%s.%d.%d@compat.test", way, i, os.Getpid())
		ids = append(ids, id)
		if err := in.Send(ctx, "sender@compat.test", fmt.Sprintf("rcpt%d@%s", i, systemDomain), way, id); err != nil {
			t.Fatal(err)
		}
		r.sent++
	}

	held, err := waitDelivered(in, sk, r.sent)
	if err != nil {
		t.Fatalf("%s: %v", way, err)
	}
	if len(held) > 0 {
		t.Logf("%s: queue files held by Postfix after the reload (flushed): %v", way, held)
	}

	// The statistics come once per connection_cache_status_update_time
	// (1s) after activity.
	var lines []pfx.LogLine
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if lines, err = in.LogSince(off); err != nil {
			t.Fatal(err)
		}
		r.stats = pfx.ParseStats(lines, program)
		if r.stats.DestHits+r.stats.DestMiss > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Each process that logged statistics under postfix/<program> must
	// be the installed goscache, started by master for that service.
	want := filepath.Join(in.DaemonDir, "goscache")
	for _, l := range lines {
		if l.Program != program || !strings.HasPrefix(l.Text, "statistics: ") {
			continue
		}
		r.statsLines = append(r.statsLines, l.Raw)
		if slices.Contains(r.pids, l.Pid) {
			continue
		}
		r.pids = append(r.pids, l.Pid)
	}
	for _, pid := range r.pids {
		exe, comm, args, err := procInfo(pid)
		if err != nil {
			t.Errorf("%s: postfix/%s[%d] logged statistics, but: %v", way, program, pid, err)
			continue
		}
		shown := exe
		if shown == "" {
			shown = "(exe link not readable)"
		}
		t.Logf("%s: postfix/%s[%d]: exe %s, comm %s, argv %q", way, program, pid, shown, comm, args)
		if exe != "" && exe != want || comm != "goscache" {
			t.Errorf("%s: postfix/%s[%d] runs %s (comm %s), not %s", way, program, pid, exe, comm, want)
		}
		if svc := serviceName(args); svc != program {
			t.Errorf("%s: postfix/%s[%d] argv %q: service %q, want %q", way, program, pid, args, svc, program)
		}
	}
	if len(r.pids) == 0 {
		t.Errorf("%s: no statistics line from postfix/%s in %s after 20s", way, program, in.LogFile)
	}
	// Postfix's own scache must not run under this instance's master (the
	// private instances of the other tests may have left some of theirs).
	masterPid := in.MasterPid()
	if masterPid == 0 {
		t.Errorf("%s: no master pid in %s/pid/master.pid", way, in.QueueDir)
	}
	for _, pid := range pfx.ProcsNamed("scache") {
		_, _, args, _ := procInfo(pid)
		if ppid := pfx.ParentPid(pid); ppid == masterPid {
			t.Errorf("%s: Postfix's own scache runs under master[%d] (pid %d, argv %q): smtp(8) is not using goscache only", way, masterPid, pid, args)
		} else {
			t.Logf("%s: an scache not of this instance: pid %d, parent %d, argv %q", way, pid, ppid, args)
		}
	}
	// Real scache would log as postfix/scache too; in way 2 any
	// postfix/scache line must come from way 1's goscache, which logs its
	// last statistics when the reload ends it.
	if program != "scache" {
		for _, l := range lines {
			if l.Program == "scache" && !slices.Contains(prev, l.Pid) {
				t.Errorf("%s: not from way 1's goscache %v: %s", way, prev, l.Raw)
			}
		}
	}

	msgs := sk.Messages()
	got := map[string]int{}
	for _, m := range msgs {
		got[m.MessageID]++
	}
	for _, id := range ids {
		if n := got["<"+id+">"]; n != 1 {
			t.Errorf("%s: message %s arrived %d times", way, id, n)
		}
	}
	r.counts = sk.Total()
	r.reused = countReused(lines)
	if r.counts.Conns >= r.sent || r.reused == 0 {
		t.Errorf("%s: no connection reuse: %d messages over %d TCP connections, %d deliveries with conn_use >= 2", way, r.sent, r.counts.Conns, r.reused)
	}
	for _, p := range pfx.Problems(lines, "smtp", "master", "postlogd", "scache", "goscache") {
		t.Errorf("%s: %s", way, p)
	}
	t.Logf("%s (tag postfix/%s): %d messages sent, sink: %d messages, %d TCP connections, %d sessions, %d RSETs; %d deliveries over cached connections",
		way, program, r.sent, r.counts.Messages, r.counts.Conns, r.counts.Sessions, r.counts.Rsets, r.reused)
	for _, l := range r.statsLines {
		t.Logf("%s: %s", way, l)
	}
	return r
}

// procInfo returns what /proc says about pid: the executable (empty when
// the link may not be read: Docker's default capabilities do not allow
// reading it for another user's process), the kernel's name of the
// executed file (comm: "goscache", or "scache" for Postfix's) and argv.
func procInfo(pid int) (exe, comm string, args []string, err error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	c, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return "", "", nil, fmt.Errorf("process gone, cannot confirm it is goscache: %w", err)
	}
	comm = strings.TrimSpace(string(c))
	if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	}
	if e, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		exe = strings.TrimSuffix(e, " (deleted)")
	}
	return exe, comm, args, nil
}

// serviceName is the master.cf service a daemon was started for: master
// passes -n NAME only when it differs from the command name (argv[0]).
func serviceName(args []string) string {
	if len(args) == 0 {
		return ""
	}
	for i, a := range args[:len(args)-1] {
		if a == "-n" {
			return args[i+1]
		}
	}
	return filepath.Base(args[0])
}

// runCmd runs a command that must succeed and returns its output.
func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v: %s", name, args, err, out)
	}
	return string(out)
}

var checkNoticeRE = regexp.MustCompile(`(?m)^(updating /\S+ => /\S+|postfix: Postfix is using backwards-compatible default settings|postfix: See https://www\.postfix\.org/COMPATIBILITY_README\.html for details|postfix: To disable backwards compatibility use "postconf compatibility_level=[0-9.]+" and "postfix reload")\n`)

// checkQuiet requires what docs/operator.md promises after either switch:
// postfix check and postconf print no warnings.
func checkQuiet(t *testing.T) {
	t.Helper()
	// Not warnings: Debian's postfix check copies /etc files into the
	// chroot and says so ("updating /etc/hosts => ..."), on trixie and
	// later the first time it runs; Postfix 3.11 notes that the test's
	// main.cf pins compatibility_level = 3.6 (the same defaults in every
	// release of the matrix).
	out := runCmd(t, filepath.Join(*flagCommandDir, "postfix"), "check")
	if out = checkNoticeRE.ReplaceAllString(out, ""); out != "" {
		t.Errorf("postfix check printed:\n%s", out)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(*flagCommandDir, "postconf"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("postconf >/dev/null: %v: %s", err, stderr.String())
	}
}

// requireFreshSystem is the start of the tests that change the system's
// own Postfix (TestSystemInstall, TestSystemUpgrade): it skips unless
// COMPAT_SYSTEM=1 (make compat-docker's container), refuses a configured
// default instance (a main.cf: compat-tests/setup.sh installs Debian's
// package with "No configuration"), and returns the goscache binary under
// test and master.cf as the package installed it, for the test to restore.
func requireFreshSystem(t *testing.T) (bin string, origMaster []byte) {
	t.Helper()
	if os.Getenv("COMPAT_SYSTEM") != "1" {
		t.Skip("changes the system's Postfix (/etc/postfix, daemon_directory): runs only with COMPAT_SYSTEM=1, as in make compat-docker's container")
	}
	requirePostfix(t)
	bin = requireGoscache(t)
	mainCF := filepath.Join(systemConfigDir, "main.cf")
	if _, err := os.Stat(mainCF); err == nil {
		t.Fatalf("%s exists: this test sets up the default instance of a fresh machine (no main.cf, as compat-tests/setup.sh installs it) and refuses to touch a configured one", mainCF)
	}
	origMaster, err := os.ReadFile(filepath.Join(systemConfigDir, "master.cf"))
	if err != nil {
		t.Fatalf("Debian's package installs master.cf even with \"No configuration\": %v", err)
	}
	return bin, origMaster
}
