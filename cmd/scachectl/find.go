package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/goscache/goscache/cmd/internal/secflag"
	"github.com/goscache/goscache/scache"
	"github.com/goscache/goscache/scache/client"
	"golang.org/x/sys/unix"
)

func findDestCommand() command {
	return command{
		name:     "find-dest",
		synopsis: "[-json] [-take] [-ttl D] [-endp LABEL] LABEL",
		summary:  "find_dest: show a connection cached for a destination, then give it back (or close it: -take)",
		run:      func(e *env, args []string) error { return runFind(e, "find-dest", args) },
	}
}

func findEndpCommand() command {
	return command{
		name:     "find-endp",
		synopsis: "[-json] [-take] [-ttl D] LABEL",
		summary:  "find_endp: show a connection cached for an endpoint, then give it back (or close it: -take)",
		run:      func(e *env, args []string) error { return runFind(e, "find-endp", args) },
	}
}

// findView is what find-dest and find-endp show.
type findView struct {
	Request      string  `json:"request"`
	Label        string  `json:"label"`
	Hit          bool    `json:"hit"`
	Endpoint     string  `json:"endpoint,omitempty"` // the endpoint label the connection was given back under
	DestProperty *string `json:"destination_property,omitempty"`
	EndpProperty string  `json:"endpoint_property,omitempty"`
	Peer         string  `json:"peer,omitempty"`
	Action       string  `json:"action,omitempty"` // "given back" or "closed"
	TTLSeconds   float64 `json:"ttl_seconds,omitempty"`
}

// findOpts are find-dest's and find-endp's arguments.
type findOpts struct {
	name      string // the command: find-dest or find-endp
	dest      bool   // find-dest
	label     string
	endpLabel string // the endpoint to give the connection back under: -endp, or find-endp's label
	take      bool
	asJSON    bool
	ttl       time.Duration // 0: what the connection had left
}

func runFind(e *env, name string, args []string) error {
	o, err := parseFind(e, name, args)
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()

	// To give a connection back, look at the cache just before the find:
	// find_dest does not say which endpoint the connection came from, and
	// neither find says how long the connection had left.
	before, err := dumpBeforeFind(c, o)
	if err != nil {
		return err
	}
	v := findView{Request: name, Label: o.label}
	fd, hit, err := find(c, o, &v)
	if err != nil || !hit {
		if err == nil {
			err = e.showFind(&v, o.asJSON)
		}
		return err
	}
	v.Hit = true
	v.Peer = peerName(fd)
	if o.take {
		v.Action = "closed"
		unix.Close(fd)
		return e.showFind(&v, o.asJSON)
	}
	return giveBack(e, c, o, before, fd, &v)
}

// parseFind reads find-dest's or find-endp's flags and label.
func parseFind(e *env, name string, args []string) (*findOpts, error) {
	o := &findOpts{name: name, dest: name == "find-dest"}
	synopsis := "[-json] [-take] [-ttl D] LABEL"
	if o.dest {
		synopsis = "[-json] [-take] [-ttl D] [-endp LABEL] LABEL"
	}
	fs := e.flags(name, synopsis)
	fs.BoolVar(&o.asJSON, "json", false, "print JSON instead of text")
	fs.BoolVar(&o.take, "take", false, "close the connection found instead of giving it back to the cache")
	secflag.Var(fs, &o.ttl, "ttl", 0, "ttl when giving the connection back, a duration or bare seconds (whole seconds); the server clamps it to connection_cache_ttl_limit (default: what the connection had left, from a dump; 2s without goscache extensions)")
	var endpArg string
	if o.dest {
		fs.StringVar(&endpArg, "endp", "", "endpoint `label` to give the connection back under (default: the binding find_dest used, from a dump; needed for servers without goscache extensions)")
	}
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return nil, err
	}
	if o.label, err = unquote(pos[0]); err != nil {
		return nil, &usageError{msg: name + ": label: " + err.Error()}
	}
	switch {
	case !o.dest:
		o.endpLabel = o.label // find_endp's label is the endpoint's
	case endpArg != "":
		if o.endpLabel, err = unquote(endpArg); err != nil {
			return nil, &usageError{msg: name + ": -endp: " + err.Error()}
		}
	}
	if o.ttl < 0 || o.ttl > maxTTL {
		return nil, &usageError{msg: fmt.Sprintf("%s: -ttl %s is out of range", name, o.ttl)}
	}
	return o, nil
}

// dumpBeforeFind dumps the cache when giving the connection back needs to
// know its endpoint or its ttl; it returns nil when no dump is needed or
// the server has no extensions and none is essential.
func dumpBeforeFind(c cacheConn, o *findOpts) (*dumpView, error) {
	if o.take || (o.ttl != 0 && !(o.dest && o.endpLabel == "")) {
		return nil, nil
	}
	before, err := c.Dump()
	switch {
	case errors.Is(err, client.ErrNoExtensions) && o.dest && o.endpLabel == "":
		return nil, fmt.Errorf("%s: the peer has no goscache extension requests (it is Postfix's scache?), so scachectl cannot tell which endpoint a connection found for a destination belongs to: give -endp LABEL to give it back, or -take to close it", o.name)
	case errors.Is(err, client.ErrNoExtensions):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%s: %w", o.name, err)
	}
	return before, nil
}

// find sends the find request and fills in v's properties; hit is false
// on a miss (status=2), where v is ready to show.
func find(c cacheConn, o *findOpts, v *findView) (fd int, hit bool, err error) {
	var res client.Result
	if o.dest {
		res, err = c.FindDest(o.label)
		v.DestProperty = &res.DestProp
	} else {
		res, err = c.FindEndp(o.label)
	}
	v.EndpProperty = res.EndpProp
	if err != nil {
		return -1, false, fmt.Errorf("%s: %w", o.name, err)
	}
	status := res.Status
	switch status {
	case scache.StatusOK:
		return res.FD, true, nil
	case scache.StatusFail:
		v.DestProperty, v.EndpProperty = nil, ""
		return -1, false, nil
	case scache.StatusBad:
		return -1, false, fmt.Errorf("%s: the server rejected the request (status=1)", o.name)
	}
	return -1, false, fmt.Errorf("%s: unexpected status=%d", o.name, status)
}

// giveBack saves the connection found (fd, which it closes) again under
// its endpoint with the ttl it had left (or -ttl), and shows v.
func giveBack(e *env, c cacheConn, o *findOpts, before *dumpView, fd int, v *findView) error {
	name, endpLabel := o.name, o.endpLabel
	if o.dest && endpLabel == "" {
		endpLabel = guessEndpoint(before, o.label, *v.DestProperty, v.EndpProperty)
	}
	if o.dest && endpLabel == "" {
		unix.Close(fd)
		v.Action = "closed"
		if err := e.showFind(v, o.asJSON); err != nil {
			return err
		}
		return fmt.Errorf("%s: could not tell which endpoint the connection belongs to (the cache changed meanwhile?): it was closed; use -endp LABEL next time", name)
	}
	left := o.ttl
	if left == 0 {
		left = remaining(before, endpLabel, v.EndpProperty)
	}
	secs, err := ttlSeconds(left)
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("%s: %w (the connection is closed)", name, err)
	}
	st, err := c.SaveEndp(endpLabel, v.EndpProperty, fd, time.Duration(secs)*time.Second)
	unix.Close(fd) // the server has its own copy now, or none
	if err != nil {
		return fmt.Errorf("%s: giving the connection back: %w (the connection is closed)", name, err)
	}
	if st != scache.StatusOK {
		return fmt.Errorf("%s: giving the connection back: the server answered status=%d (the connection is closed)", name, st)
	}
	v.Endpoint, v.Action, v.TTLSeconds = endpLabel, "given back", float64(secs)
	return e.showFind(v, o.asJSON)
}

// guessEndpoint returns the endpoint label of the binding find_dest used:
// the first binding of label, in order, whose endpoint had connections and
// whose destination properties are destProp, preferring one whose oldest
// connection had endpProp. It returns "" when there is none.
func guessEndpoint(d *dumpView, label, destProp, endpProp string) string {
	if d == nil {
		return ""
	}
	oldest := map[string]string{}
	for _, p := range d.Endpoints {
		if len(p.Connections) > 0 {
			oldest[p.Label] = p.Connections[0].Property
		}
	}
	fallback := ""
	for _, dv := range d.Destinations {
		if dv.Label != label {
			continue
		}
		for _, b := range dv.Bindings {
			prop, ok := oldest[b.Endpoint]
			if !ok || b.Property != destProp {
				continue
			}
			if prop == endpProp {
				return b.Endpoint
			}
			if fallback == "" {
				fallback = b.Endpoint
			}
		}
	}
	return fallback
}

// defaultTTL is the ttl smtp(8) saves connections with
// (smtp_connection_cache_time_limit) and the server's default limit.
const defaultTTL = 2 * time.Second

// maxTTL is the largest ttl the protocol carries (a positive C int).
const maxTTL = (1<<31 - 1) * time.Second

// remaining returns how long the oldest connection of endpoint endp with
// properties prop had left in dump d, at least a second; defaultTTL when d
// does not show one.
func remaining(d *dumpView, endp, prop string) time.Duration {
	if d == nil {
		return defaultTTL
	}
	for _, p := range d.Endpoints {
		if p.Label != endp {
			continue
		}
		for _, c := range p.Connections {
			if c.Property == prop {
				return max(c.Expires.Sub(d.Time), time.Second)
			}
		}
	}
	return defaultTTL
}

func (e *env) showFind(v *findView, asJSON bool) error {
	if asJSON {
		return writeJSON(e.stdout, v)
	}
	w := e.stdout
	what := "destination"
	if v.Request == "find-endp" {
		what = "endpoint"
	}
	if !v.Hit {
		fmt.Fprintf(w, "miss: no connection cached for %s %s\n", what, quote(v.Label))
		return nil
	}
	fmt.Fprintf(w, "hit: %s %s\n", what, quote(v.Label))
	peer := v.Peer
	if peer == "" {
		peer = "-"
	}
	fmt.Fprintf(w, "peer %s\n", peer)
	if v.DestProperty != nil {
		fmt.Fprintf(w, "destination properties:\n")
		writeProps(w, "  | ", *v.DestProperty)
	}
	fmt.Fprintf(w, "endpoint properties:\n")
	writeProps(w, "  | ", v.EndpProperty)
	switch v.Action {
	case "closed":
		fmt.Fprintf(w, "connection closed\n")
	case "given back":
		fmt.Fprintf(w, "connection given back: saved again under endpoint %s with ttl %gs (it is now the newest there)\n", quote(v.Endpoint), v.TTLSeconds)
	}
	return nil
}

// ttlSeconds turns a -ttl flag into the whole seconds the protocol carries,
// rounding up.
func ttlSeconds(d time.Duration) (int, error) {
	if d <= 0 {
		return 0, fmt.Errorf("-ttl must be positive, not %s", d)
	}
	if d > maxTTL {
		return 0, fmt.Errorf("-ttl %s is too large", d)
	}
	return int((d + time.Second - 1) / time.Second), nil
}

// peerName returns the remote address of socket fd, or "" (see
// scache.PeerAddr). getpeername only reads: the descriptor is not touched.
func peerName(fd int) string { return scache.PeerAddr(fd) }
