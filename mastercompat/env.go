package mastercompat

// Environment variable names (global/mail_conf.h, master/master_proto.h,
// global/maillog_client.h).
const (
	EnvConfig          = "MAIL_CONFIG"      // CONF_ENV_PATH
	EnvVerbose         = "MAIL_VERBOSE"     // CONF_ENV_VERB
	EnvDebug           = "MAIL_DEBUG"       // CONF_ENV_DEBUG
	EnvLogTag          = "MAIL_LOGTAG"      // CONF_ENV_LOGTAG
	EnvGeneration      = "GENERATION"       // MASTER_GEN_NAME
	EnvPostlogService  = "POSTLOG_SERVICE"  // POSTLOG_SERVICE_ENV
	EnvPostlogHostname = "POSTLOG_HOSTNAME" // POSTLOG_HOSTNAME_ENV
)

// DefaultConfigDir is Postfix's compiled-in DEF_CONFIG_DIR.
const DefaultConfigDir = "/etc/postfix"

// Env is what a child learns from the environment master hands down
// (PROTOCOL.md §6.2).
type Env struct {
	ConfigDir       string // MAIL_CONFIG, or DefaultConfigDir when unset
	LogTag          string // MAIL_LOGTAG: log tag prefix before main.cf is read
	PostlogService  string // POSTLOG_SERVICE: postlog socket path before main.cf is read
	PostlogHostname string // POSTLOG_HOSTNAME
	Verbose         bool   // MAIL_VERBOSE is set (any value)
	Debug           bool   // MAIL_DEBUG is set (any value)
	Generation      string // GENERATION as given (octal); see [Env.ParseGeneration]
	HasGeneration   bool   // GENERATION is set
}

// ReadEnv collects the variables of [Env] through lookup, which has the
// signature of os.LookupEnv. It never fails: a bad GENERATION is reported
// by [Env.ParseGeneration], at the point where Postfix checks it.
func ReadEnv(lookup func(string) (string, bool)) Env {
	var e Env
	e.ConfigDir = DefaultConfigDir
	if v, ok := lookup(EnvConfig); ok {
		e.ConfigDir = v
	}
	e.LogTag, _ = lookup(EnvLogTag)
	e.PostlogService, _ = lookup(EnvPostlogService)
	e.PostlogHostname, _ = lookup(EnvPostlogHostname)
	_, e.Verbose = lookup(EnvVerbose)
	_, e.Debug = lookup(EnvDebug)
	e.Generation, e.HasGeneration = lookup(EnvGeneration)
	return e
}

// ParseGeneration returns master's spawn generation, which every status
// record echoes. master writes it with %o; like multi_server_main, the
// value must be all decimal digits (else "bad generation: V") and is then
// read as octal up to the first 8 or 9, as strtoul(..., 8) would, and
// truncated to 32 bits. Without GENERATION the generation is 0.
func (e Env) ParseGeneration() (uint32, error) {
	if !e.HasGeneration {
		return 0, nil
	}
	s := e.Generation
	if s == "" {
		return 0, fatalf("bad generation: %s", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fatalf("bad generation: %s", s)
		}
	}
	var n uint64
	for i := 0; i < len(s) && s[i] <= '7'; i++ {
		if n > (^uint64(0))>>3 {
			n = ^uint64(0)
			break
		}
		n = n<<3 | uint64(s[i]-'0')
	}
	return uint32(n), nil
}
