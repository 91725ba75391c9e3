package main

import (
	"errors"
	"os/user"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goscache/goscache/mastercompat"
	"github.com/goscache/goscache/scache/server"
)

func TestMasterPeers(t *testing.T) {
	postfixUIDs := []int(nil)
	if u, err := user.Lookup("postfix"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		postfixUIDs = []int{uid}
	}
	tests := []struct {
		name   string
		mainCF string
		owner  *mastercompat.Owner
		want   *server.PeerPolicy
		err    string
	}{
		{"-u: mail_owner as looked up", "", &mastercompat.Owner{Name: "postfix", UID: 107, GID: 114}, &server.PeerPolicy{UIDs: []int{107}}, ""},
		{"no -u: mail_owner looked up here", "", nil, &server.PeerPolicy{UIDs: postfixUIDs}, ""},
		{"unknown mail_owner without -u", "mail_owner = no-such-user-goscache", nil, &server.PeerPolicy{}, ""},
		{"allowed group", "goscache_allow_group = 4242", &mastercompat.Owner{UID: 107}, &server.PeerPolicy{UIDs: []int{107}, GIDs: []int{4242}}, ""},
		{"allowed group by name", "goscache_allow_group = root", &mastercompat.Owner{UID: 107}, &server.PeerPolicy{UIDs: []int{107}, GIDs: []int{0}}, ""},
		{"unknown group", "goscache_allow_group = no-such-group-goscache", &mastercompat.Owner{UID: 107}, nil,
			"file /etc/postfix/main.cf: parameter goscache_allow_group: unknown group name: no-such-group-goscache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mastercompat.NewConfig("/etc/postfix", "host")
			if err := cfg.Load(strings.NewReader(tt.mainCF)); err != nil {
				t.Fatal(err)
			}
			params, err := cfg.Params()
			if err != nil {
				t.Fatal(err)
			}
			got, err := masterPeers(cfg, params, tt.owner)
			if tt.err != "" {
				if fe, ok := errors.AsType[*mastercompat.FatalError](err); !ok || fe.Text != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("policy mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
