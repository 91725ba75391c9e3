package layering

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/goscache/goscache"

// allowed lists, for every package of the module, the module packages and
// the third-party modules it may depend on, directly or not (go list -deps,
// test files excluded). A package missing from this table fails the test:
// a new package states its place in the graph when it is added.
var allowed = map[string][]string{
	"attr":         {},
	"mastercompat": {"golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	// The connection cache in the rooms Postfix has: scache (the wire
	// vocabulary: statuses, requests, attributes, the extension replies),
	// cache (scache_multi.c), server (scache.c), client (scache_clnt.c).
	// The cache knows nothing of the wire; server and client know nothing
	// of each other.
	"scache/cache":           {"scache/internal/errs", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	"scache":                 {"attr", "scache/cache", "scache/internal/errs", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	"scache/server":          {"scache", "scache/cache", "scache/internal/fdpass", "scache/internal/errs", "attr", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	"scache/client":          {"scache", "scache/cache", "scache/internal/fdpass", "scache/internal/errs", "attr", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	"scache/internal/fdpass": {"scache", "scache/cache", "scache/internal/errs", "attr", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	"scache/internal/errs":   {"github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	"scache/fdtest":          {"golang.org/x/sys"},
	"scache/scachetest":      {"scache", "scache/server", "scache/client", "scache/cache", "scache/internal/fdpass", "scache/internal/errs", "scache/fdtest", "attr", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	"cmd/goscache":           {"mastercompat", "scache", "scache/server", "scache/cache", "scache/internal/fdpass", "scache/internal/errs", "attr", "cmd/goscache/startupparams", "cmd/internal/secflag", "cmd/internal/buildinfo", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	// scache's startup parameter lists: data of the scache service, which
	// mastercompat's mechanism is given; nothing of the module below it.
	"cmd/goscache/startupparams": {},
	"cmd/goscache-demo":          {"scache", "scache/client", "scache/cache", "scache/internal/fdpass", "scache/internal/errs", "attr", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	// scachectl metrics: Prometheus's client library and what it brings.
	// No mastercompat and no bench code: the CLI is only a CLI.
	"cmd/scachectl": {"scache", "scache/client", "scache/cache", "scache/internal/fdpass", "scache/internal/errs", "attr", "cmd/internal/secflag", "cmd/internal/buildinfo", "golang.org/x/sys",
		"github.com/prometheus", "github.com/beorn7/perks", "github.com/cespare/xxhash",
		"github.com/munnerz/goautoneg", "google.golang.org/protobuf", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	// The bench harness and the floor, a master(8) child.
	"cmd/scachebench":       {"scache", "scache/server", "scache/client", "scache/cache", "scache/internal/fdpass", "scache/internal/errs", "attr", "mastercompat", "cmd/internal/benchresults", "cmd/internal/secflag", "golang.org/x/sys", "github.com/hashicorp/go-multierror", "github.com/hashicorp/errwrap"},
	"cmd/benchplot":         {"cmd/internal/benchresults", "compat-tests/e2ebench"},
	"cmd/internal/layering": {},
	"cmd/internal/secflag":  {},
	// The version and revision every command reports.
	"cmd/internal/buildinfo":    {},
	"cmd/internal/benchresults": {},
	"compat-tests":              {"*"},
	"compat-tests/pfx":          {"*"},
	"compat-tests/sink":         {"*"},
	// make bench-e2e's results format and parsing, read by benchplot.
	"compat-tests/e2ebench": {},
}

// TestLayering fails when a package depends on a module package or a
// third-party module that its row in allowed does not name.
func TestLayering(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-f", "{{.ImportPath}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		t.Run(rel, func(t *testing.T) {
			ok, known := allowed[rel]
			if !known {
				t.Fatalf("%s is not in the layering table: add its row (and to docs/architecture.md)", rel)
			}
			if len(ok) == 1 && ok[0] == "*" {
				return
			}
			for _, dep := range deps(t, goTool, pkg) {
				if !permitted(dep, ok) {
					t.Errorf("%s depends on %s, which its row does not allow", rel, dep)
				}
			}
		})
	}
}

// deps returns the non-standard packages pkg depends on, itself excluded.
func deps(t *testing.T, goTool, pkg string) []string {
	t.Helper()
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var ds []string
	for _, d := range strings.Fields(string(out)) {
		if d != pkg {
			ds = append(ds, d)
		}
	}
	sort.Strings(ds)
	return ds
}

// permitted reports whether dep is named by ok: a module package by its
// path relative to the module, a third-party package by a module prefix.
func permitted(dep string, ok []string) bool {
	if rel, in := strings.CutPrefix(dep, module+"/"); in {
		for _, a := range ok {
			if rel == a {
				return true
			}
		}
		return false
	}
	for _, a := range ok {
		if dep == a || strings.HasPrefix(dep, a+"/") {
			return true
		}
	}
	return false
}

// TestArchitecture_everyFile fails when a Go file of the module (test files
// aside, the compat-tagged ones included) is not named, by its path from
// the module root in backquotes, in docs/architecture.md: the page covers
// every file of every package.
func TestArchitecture_everyFile(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	root, err := exec.Command(goTool, "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	dir := strings.TrimSpace(string(root))
	doc, err := os.ReadFile(filepath.Join(dir, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goTool, "list", "-tags", "compat", "-f",
		"{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .IgnoredGoFiles}} {{.}}{{end}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		rel, err := filepath.Rel(dir, fields[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields[1:] {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			n++
			if name := filepath.ToSlash(filepath.Join(rel, f)); !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/architecture.md does not name `%s`: say what it holds under \"Every file\"", name)
			}
		}
	}
	if n == 0 {
		t.Fatal("go list found no Go files")
	}
}
