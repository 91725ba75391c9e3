//go:build compat

package compattest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goscache/goscache/cmd/goscache/startupparams"
)

// TestStartupParams_goscache: the parameters scache expands at startup
// differ between Postfix releases (the lists of cmd/goscache/startupparams),
// and goscache must follow the release it runs under. For each parameter
// that some release expands and another does not (and two controls), a
// main.cf whose value of it is a $-expansion syntax error is given to this
// machine's scache and to goscache, both started as master would start
// them: each must die with the same warnings and fatal error, or neither.
func TestStartupParams_goscache(t *testing.T) {
	requirePostfix(t)
	bin := requireGoscache(t)
	out, err := exec.Command(filepath.Join(*flagCommandDir, "postconf"), "-dh", "mail_version").Output()
	if err != nil {
		t.Fatalf("postconf -dh mail_version: %v", err)
	}
	version := strings.TrimSpace(string(out))
	releases := []string{"3.5", "3.7", "3.10", "3.11"}
	count := map[string]int{}
	for _, r := range releases {
		for _, p := range startupparams.For(r) {
			count[p]++
		}
	}
	params := []string{"connection_cache_ttl_limit", "smtpd_banner"} // always, never
	for p, n := range count {
		if n < len(releases) {
			params = append(params, p)
		}
	}
	slices.Sort(params)
	mine := startupparams.For(version)
	t.Logf("Postfix %s: the %s list, %d parameters; checking %d", version, startupparams.Release(version), len(mine), len(params))

	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, p := range params {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			mainCF := p + " = ${{a} = {b}}\n"
			// Where this release's list says the error is fatal, wait
			// for the fatal line as long as a loaded machine may need
			// (it normally comes within milliseconds); elsewhere two
			// seconds without one count as none.
			wait := 2 * time.Second
			if slices.Contains(mine, p) {
				wait = time.Minute
			}
			real := startupLines(t, filepath.Join(*flagDaemonDir, "scache"), mainCF, wait)
			gos := startupLines(t, bin, mainCF, wait)
			fatal := slices.Contains(real, "fatal: dictionary mail_dict: macro processing error")
			if fatal != slices.Contains(mine, p) {
				t.Errorf("%s: scache's macro error %v, but it is in the %s list: %v", p, fatal, startupparams.Release(version), !fatal)
			}
			if fatal && !slices.Equal(real, gos) || !fatal && slices.Contains(gos, "fatal: dictionary mail_dict: macro processing error") {
				t.Errorf("%s: scache printed %q, goscache %q", p, real, gos)
			}
		})
	}
	wg.Wait()
}

// startupLines starts daemon as master would start the scache service
// (-l -t unix -V, MAIL_CONFIG, fds 5 and 6 on /dev/null; nothing serves,
// the fatal error comes first) with a small main.cf plus extra, and returns
// its stderr lines, without the "postfix/NAME: " tag, up to the first fatal
// one; after wait without one, those it printed.
func startupLines(t *testing.T, daemon, extra string, wait time.Duration) []string {
	dir := t.TempDir()
	q := filepath.Join(dir, "q")
	if err := os.Mkdir(q, 0o755); err != nil {
		t.Fatal(err)
	}
	cf := "queue_directory = " + q + "\nmail_owner = postfix\nsetgid_group = postdrop\ndefault_privs = nobody\n" +
		"myhostname = test.example\ncompatibility_level = 3.6\n" + extra
	path := filepath.Join(dir, "main.cf")
	if err := os.WriteFile(path, []byte(cf), 0o644); err != nil {
		t.Fatal(err)
	}
	// Postfix rereads a young main.cf until it is stable.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, daemon, "-l", "-t", "unix", "-V")
	cmd.Dir = dir
	cmd.Env = []string{"MAIL_CONFIG=" + dir, "LANG=C", "PATH=/usr/bin:/bin"}
	cmd.ExtraFiles = []*os.File{nil, nil, null, null} // fds 5 and 6
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		_, text, _ := strings.Cut(sc.Text(), ": ")
		lines = append(lines, text)
		if strings.HasPrefix(text, "fatal: ") {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return lines
}
