package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/goscache/goscache/cmd/internal/secflag"
	"github.com/goscache/goscache/scache"
	"golang.org/x/sys/unix"
)

func saveEndpCommand() command {
	return command{
		name:     "save-endp",
		synopsis: "[-json] [-ttl D] [-label L] [-prop P] (HOST:PORT | -fd N)",
		summary:  "save_endp: connect to HOST:PORT (or take descriptor N) and cache the connection",
		run:      runSaveEndp,
	}
}

func saveDestCommand() command {
	return command{
		name:     "save-dest",
		synopsis: "[-json] [-ttl D] [-prop P] DEST_LABEL ENDP_LABEL",
		summary:  "save_dest: bind a destination label to an endpoint label",
		run:      runSaveDest,
	}
}

// saveView is what save-endp and save-dest show.
type saveView struct {
	Request     string        `json:"request"`
	Label       string        `json:"label"`
	Endpoint    string        `json:"endpoint,omitempty"` // save-dest only
	Property    string        `json:"property"`
	Peer        string        `json:"peer,omitempty"` // save-endp only
	TTLSeconds  float64       `json:"ttl_seconds"`
	Status      scache.Status `json:"status"`
	Description string        `json:"description"`
}

// endpLabel is the endpoint label Postfix 3.7's smtp(8) uses for a
// connection to addr:port with service "smtp" and TLS level "may" (1):
// SERVICE, ADDR, PORT, TLS_LEVEL, each ending in a newline.
func endpLabel(addr netip.AddrPort) string {
	return fmt.Sprintf("smtp\n%s\n%d\n1\n", addr.Addr().Unmap(), addr.Port())
}

// endpProp is the endpoint property smtp(8) writes for a fresh session at
// TLS level may: a plain-format record ending in an empty line.
func endpProp(now time.Time) string {
	return fmt.Sprintf("tls_level=1\nreuse_count=0\nendpoint_features=0\nexpire_time=%d\n\n", now.Add(300*time.Second).Unix())
}

func runSaveEndp(e *env, args []string) error {
	fs := e.flags("save-endp", "[-json] [-ttl D] [-label L] [-prop P] (HOST:PORT | -fd N)")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	var ttl time.Duration
	secflag.Var(fs, &ttl, "ttl", 2*time.Second, "time to live, a duration or bare seconds (whole seconds; the server clamps it to connection_cache_ttl_limit)")
	labelArg := fs.String("label", "", "endpoint `label` (default: smtp(8)'s for the peer: \"smtp\\nADDR\\nPORT\\n1\\n\")")
	propArg := fs.String("prop", "", "endpoint `properties` (default: smtp(8)'s for a fresh session: \"tls_level=1\\nreuse_count=0\\nendpoint_features=0\\nexpire_time=NOW+300\\n\\n\")")
	fdArg := fs.Int("fd", -1, "cache this already open descriptor `N` (a connected socket) instead of connecting")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if (len(pos) == 1) == (*fdArg >= 0) {
		fs.Usage()
		return &usageError{msg: "save-endp: give either HOST:PORT or -fd N"}
	}
	secs, err := ttlSeconds(ttl)
	if err != nil {
		return &usageError{msg: "save-endp: " + err.Error()}
	}
	label, prop := "", ""
	if *labelArg != "" {
		if label, err = unquote(*labelArg); err != nil {
			return &usageError{msg: "save-endp: -label: " + err.Error()}
		}
	}
	if *propArg != "" {
		if prop, err = unquote(*propArg); err != nil {
			return &usageError{msg: "save-endp: -prop: " + err.Error()}
		}
	}

	fd := *fdArg
	if fd >= 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("save-endp: descriptor %d: %w", fd, err)
		}
	} else {
		if fd, err = dialTCP(e.ctx, pos[0], e.timeout); err != nil {
			return fmt.Errorf("save-endp: %w", err)
		}
		defer unix.Close(fd)
	}
	peer := peerName(fd)
	if label == "" {
		ap, err := netip.ParseAddrPort(peer)
		if err != nil {
			return &usageError{msg: fmt.Sprintf("save-endp: descriptor %d is not a TCP connection (peer %q): give -label", fd, peer)}
		}
		label = endpLabel(ap)
	}
	if *propArg == "" {
		prop = endpProp(time.Now())
	}

	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.SaveEndp(label, prop, fd, time.Duration(secs)*time.Second)
	if err != nil {
		return fmt.Errorf("save-endp: %w", err)
	}
	return e.showSave(&saveView{Request: "save-endp", Label: label, Property: prop, Peer: peer,
		TTLSeconds: float64(secs), Status: st, Description: describe(st)}, *asJSON)
}

func runSaveDest(e *env, args []string) error {
	fs := e.flags("save-dest", "[-json] [-ttl D] [-prop P] DEST_LABEL ENDP_LABEL")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	var ttl time.Duration
	secflag.Var(fs, &ttl, "ttl", 2*time.Second, "time to live, a duration or bare seconds (whole seconds; the server clamps it to connection_cache_ttl_limit)")
	propArg := fs.String("prop", "", "destination `properties` (default: smtp(8)'s, made from the labels: \"destination=NEXTHOP\\nhost_name=ADDR\\nhost_addr=ADDR\\ndestination_features=0\\n\\n\")")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	secs, err := ttlSeconds(ttl)
	if err != nil {
		return &usageError{msg: "save-dest: " + err.Error()}
	}
	dest, err := unquote(pos[0])
	if err != nil {
		return &usageError{msg: "save-dest: DEST_LABEL: " + err.Error()}
	}
	endp, err := unquote(pos[1])
	if err != nil {
		return &usageError{msg: "save-dest: ENDP_LABEL: " + err.Error()}
	}
	var prop string
	if *propArg != "" {
		if prop, err = unquote(*propArg); err != nil {
			return &usageError{msg: "save-dest: -prop: " + err.Error()}
		}
	} else {
		prop = destProp(dest, endp)
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.SaveDest(dest, prop, endp, time.Duration(secs)*time.Second)
	if err != nil {
		return fmt.Errorf("save-dest: %w", err)
	}
	return e.showSave(&saveView{Request: "save-dest", Label: dest, Endpoint: endp, Property: prop,
		TTLSeconds: float64(secs), Status: st, Description: describe(st)}, *asJSON)
}

// destProp builds the destination properties smtp(8) 3.7 writes, from a
// destination label "SERVICE\nNEXTHOP\n" and an endpoint label
// "SERVICE\nADDR\nPORT\nTLS\n". Fields it cannot find are left empty.
func destProp(dest, endp string) string {
	field := func(label string, i int) string {
		f := strings.Split(label, "\n")
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	addr := field(endp, 1)
	return fmt.Sprintf("destination=%s\nhost_name=%s\nhost_addr=%s\ndestination_features=0\n\n", field(dest, 1), addr, addr)
}

// describe explains a save status.
func describe(st scache.Status) string {
	switch st {
	case scache.StatusOK:
		return "saved"
	case scache.StatusBad:
		return "rejected as a bad request (status=1)"
	case scache.StatusFail:
		return "failed: the server did not receive the descriptor (status=2)"
	}
	return "unexpected status=" + strconv.Itoa(int(st))
}

func (e *env) showSave(v *saveView, asJSON bool) error {
	if asJSON {
		if err := writeJSON(e.stdout, v); err != nil {
			return err
		}
	} else {
		w := e.stdout
		if v.Request == "save-endp" {
			fmt.Fprintf(w, "%s: endpoint %s  peer %s  ttl %gs\n", v.Description, quote(v.Label), orDash(v.Peer), v.TTLSeconds)
		} else {
			fmt.Fprintf(w, "%s: destination %s -> endpoint %s  ttl %gs\n", v.Description, quote(v.Label), quote(v.Endpoint), v.TTLSeconds)
		}
		writeProps(w, "  | ", v.Property)
	}
	if v.Status != scache.StatusOK {
		return fmt.Errorf("%s: %s", v.Request, v.Description)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dialTCP connects to hostport and returns the connection as a blocking
// descriptor, the way smtp(8) hands its sessions to the cache. The
// connection is ours alone until it is cached, so changing its flags here
// is fine.
func dialTCP(ctx context.Context, hostport string, timeout time.Duration) (int, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	f, err := conn.(*net.TCPConn).File()
	if err != nil {
		return -1, err
	}
	// f's descriptor is a duplicate; keep it and let f go without closing it.
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
