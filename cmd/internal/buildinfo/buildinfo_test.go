package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolve(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name              string
		version, revision string
		bi                *debug.BuildInfo
		want              Info
	}{
		{"stamped wins over Go's records", "0.2.0-1", "feedface",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v9.9.9"}, Settings: vcs("vcs.revision", rev)},
			Info{Version: "0.2.0-1", Revision: "feedface", GoVersion: "go1.26.0"}},
		{"plain go build in the tree", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "false")},
			Info{Version: devel, Revision: rev, GoVersion: "go1.26.0"}},
		{"uncommitted changes", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", rev, "vcs.modified", "true")},
			Info{Version: devel, Revision: rev + "-dirty", GoVersion: "go1.26.0"}},
		{"go install module@version", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.1.0"}},
			Info{Version: "0.1.0", Revision: unknown, GoVersion: "go1.26.0"}},
		{"no VCS stamp (-buildvcs=false)", "0.1.0-1", "",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			Info{Version: "0.1.0-1", Revision: unknown, GoVersion: "go1.26.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, resolve(tt.version, tt.revision, tt.bi)); diff != "" {
				t.Errorf("resolve (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("no build info", func(t *testing.T) {
		got := resolve("", "", nil)
		if got.Version != devel || got.Revision != unknown || got.GoVersion == "" {
			t.Errorf("resolve(nil) = %+v, want devel, unknown and the runtime's Go version", got)
		}
	})
}

func TestInfoString(t *testing.T) {
	tests := []struct {
		in   Info
		want string
	}{
		{Info{"0.1.0-1", "0123456789abcdef0123", "go1.26.0"}, "0.1.0-1 (revision 0123456789ab, go1.26.0)"},
		{Info{devel, "0123456789abcdef0123-dirty", "go1.26.0"}, "devel (revision 0123456789ab-dirty, go1.26.0)"},
		{Info{devel, unknown, "go1.26.0"}, "devel (revision unknown, go1.26.0)"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}
