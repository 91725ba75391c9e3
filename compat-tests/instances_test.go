//go:build compat

package compattest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goscache/goscache/compat-tests/pfx"
)

// TestInstances runs two private Postfix instances at once, each with
// goscache under its own master(8): "out" switched the first way (master.cf's
// scache service runs goscache), "in" the second (a goscache service and
// connection_cache_service_name = goscache). scachectl -c and MAIL_CONFIG
// reach each instance's own cache, every command and the exporter alike;
// an instance that does not exist is an error, not the default instance.
func TestInstances(t *testing.T) {
	requirePostfix(t)
	bin := requireGoscache(t)
	ctl := scachectlBinary(t)
	ctx := t.Context()

	mk := func(name string) *pfx.Instance {
		root := filepath.Join(os.TempDir(), fmt.Sprintf("goscache-compat-%s-%d", name, os.Getpid()))
		os.RemoveAll(root)
		return createInstance(t, name, pfx.Options{
			Root: root, DaemonDir: *flagDaemonDir, CommandDir: *flagCommandDir, Scache: bin,
			// Bindings saved by hand stay while the test looks.
			Main: map[string]string{"connection_cache_ttl_limit": "3600s"},
		})
	}
	out, in := mk("inst-out"), mk("inst-in")
	// "in" switches the second way.
	for _, args := range [][]string{
		{"-F", "scache/unix/command = scache"},
		{"-M", "goscache/unix = goscache unix - - y - 1 goscache"},
		{"-e", "connection_cache_service_name = goscache"},
	} {
		if b, err := in.Postconf(ctx, args...); err != nil {
			t.Fatalf("postconf %q: %v: %s", args, err, b)
		}
	}
	for _, inst := range []*pfx.Instance{out, in} {
		if err := inst.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sockets := map[*pfx.Instance]string{
		out: filepath.Join(out.QueueDir, "private", "scache"),
		in:  filepath.Join(in.QueueDir, "private", "goscache"),
	}
	labels := map[*pfx.Instance]string{out: `smtp\nout.example\n`, in: `smtp\nin.example\n`}
	names := map[*pfx.Instance]string{out: "out (way 1)", in: "in (way 2)"}

	// A binding in each instance, saved through -c and MAIL_CONFIG.
	run := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, ctl, args...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	mustRun := func(env []string, args ...string) string {
		t.Helper()
		o, e, code := run(env, args...)
		if code != 0 {
			t.Fatalf("scachectl %q (env %q): exit %d\n%s%s", args, env, code, o, e)
		}
		return o
	}
	mustRun(nil, "-c", out.ConfigDir, "save-dest", "-ttl", "3600s", labels[out], `smtp\n127.0.0.1\n25\n1\n`)
	mustRun([]string{"MAIL_CONFIG=" + in.ConfigDir}, "save-dest", "-ttl", "3600s", labels[in], `smtp\n127.0.0.2\n25\n1\n`)

	type pick struct {
		name string
		env  []string
		args []string
	}
	for inst, picks := range map[*pfx.Instance][]pick{
		out: {{"-c", nil, []string{"-c", out.ConfigDir}}, {"MAIL_CONFIG", []string{"MAIL_CONFIG=" + out.ConfigDir}, nil}},
		in:  {{"-c", nil, []string{"-c", in.ConfigDir}}, {"MAIL_CONFIG", []string{"MAIL_CONFIG=" + in.ConfigDir}, nil}},
	} {
		other := out
		if inst == out {
			other = in
		}
		for _, p := range picks {
			t.Run(names[inst]+"/"+p.name, func(t *testing.T) {
				var st struct {
					Server string `json:"server"`
					Socket string `json:"socket"`
					Build  struct {
						Version string `json:"version"`
					} `json:"build"`
					Cached struct {
						Domains int `json:"domains"`
					} `json:"cached"`
				}
				if err := json.Unmarshal([]byte(mustRun(p.env, append(p.args, "stats", "-json")...)), &st); err != nil {
					t.Fatal(err)
				}
				if st.Server != "goscache" || st.Socket != sockets[inst] || st.Cached.Domains != 1 || st.Build.Version == "" {
					t.Errorf("stats: %+v; want goscache at %s with 1 domain and a version", st, sockets[inst])
				}
				dump := mustRun(p.env, append(p.args, "dump")...)
				if !strings.Contains(dump, labels[inst]) || strings.Contains(dump, labels[other]) {
					t.Errorf("dump shows another instance's cache, or not its own (%s):\n%s", labels[inst], dump)
				}
				if v := mustRun(p.env, append(p.args, "version")...); !strings.Contains(v, " at "+sockets[inst]+"\n") {
					t.Errorf("version:\n%s", v)
				}
				if m := scrapeOnce(t, ctl, append(p.env, os.Environ()...), p.args); !strings.Contains(m, "goscache_up 1\n") ||
					!strings.Contains(m, "goscache_cached_destinations 1\n") || !strings.Contains(m, "goscache_build_info{") {
					t.Errorf("metrics:\n%s", m)
				}
			})
		}
	}

	// A wrong instance is an error, not the default instance's cache.
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"MAIL_CONFIG=/nonexistent"}, []string{"stats"}, "MAIL_CONFIG /nonexistent names no Postfix instance"},
		{nil, []string{"-c", "/nonexistent", "metrics"}, "-c /nonexistent names no Postfix instance"},
		{nil, []string{"-c", t.TempDir(), "version"}, "names no Postfix instance"},
	} {
		o, e, code := run(c.env, c.args...)
		if code != 1 || !strings.Contains(e, c.want) {
			t.Errorf("scachectl %q (env %q): exit %d, stdout %q, stderr %q; want 1 and %q", c.args, c.env, code, o, e, c.want)
		}
	}
}

// scrapeOnce starts "scachectl [global] metrics" on a free loopback port,
// scrapes it once and stops it.
func scrapeOnce(t *testing.T, ctl string, env, global []string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, ctl, append(global, "metrics", "-listen", "127.0.0.1:0")...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() {
		t.Fatalf("scachectl metrics said nothing: %v", sc.Err())
	}
	m := regexp.MustCompile(`on (http://\S+/metrics)$`).FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("no URL in %q", sc.Text())
	}
	go io.Copy(io.Discard, stderr)
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// scachectlBinary returns the scachectl next to the goscache binary under
// test (compat-tests/docker.sh puts one there: the images have no Go), or
// builds ./cmd/scachectl.
func scachectlBinary(t *testing.T) string {
	t.Helper()
	if *flagGoscache != "" && *flagGoscache != "none" {
		if p := filepath.Join(filepath.Dir(*flagGoscache), "scachectl"); fileExists(p) {
			return p
		}
	}
	bin := filepath.Join(t.TempDir(), "scachectl")
	cmd := exec.CommandContext(t.Context(), goTool(), "build", "-o", bin, "./cmd/scachectl")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/scachectl: %v: %s", err, out)
	}
	return bin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
