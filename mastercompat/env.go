package mastercompat

// Environment variable names (global/mail_conf.h, master/master_proto.h,
// global/maillog_client.h).
const (
	envConfig          = "MAIL_CONFIG"      // CONF_ENV_PATH
	envVerbose         = "MAIL_VERBOSE"     // CONF_ENV_VERB
	envDebug           = "MAIL_DEBUG"       // CONF_ENV_DEBUG
	envLogTag          = "MAIL_LOGTAG"      // CONF_ENV_LOGTAG
	envGeneration      = "GENERATION"       // MASTER_GEN_NAME
	envPostlogService  = "POSTLOG_SERVICE"  // POSTLOG_SERVICE_ENV
	envPostlogHostname = "POSTLOG_HOSTNAME" // POSTLOG_HOSTNAME_ENV
)

// defaultConfigDir is Postfix's compiled-in DEF_CONFIG_DIR.
const defaultConfigDir = "/etc/postfix"

// masterEnv is what a child learns from the environment master hands down
// (PROTOCOL.md §6.2).
type masterEnv struct {
	ConfigDir       string // MAIL_CONFIG, or defaultConfigDir when unset
	LogTag          string // MAIL_LOGTAG: log tag prefix before main.cf is read
	PostlogService  string // POSTLOG_SERVICE: postlog socket path before main.cf is read
	PostlogHostname string // POSTLOG_HOSTNAME
	Verbose         bool   // MAIL_VERBOSE is set (any value)
	Debug           bool   // MAIL_DEBUG is set (any value)
	Generation      string // GENERATION as given (octal); see parseGeneration
	HasGeneration   bool   // GENERATION is set
}

// readEnv collects the variables of masterEnv through lookup, which has the
// signature of os.LookupEnv. It never fails: a bad GENERATION is reported
// by parseGeneration, at the point where Postfix checks it.
func readEnv(lookup func(string) (string, bool)) masterEnv {
	var e masterEnv
	e.ConfigDir = defaultConfigDir
	if v, ok := lookup(envConfig); ok {
		e.ConfigDir = v
	}
	e.LogTag, _ = lookup(envLogTag)
	e.PostlogService, _ = lookup(envPostlogService)
	e.PostlogHostname, _ = lookup(envPostlogHostname)
	_, e.Verbose = lookup(envVerbose)
	_, e.Debug = lookup(envDebug)
	e.Generation, e.HasGeneration = lookup(envGeneration)
	return e
}

// parseGeneration returns master's spawn generation, which every status
// record echoes. master writes it with %o; like multi_server_main, the
// value must be all decimal digits (else "bad generation: V") and is then
// read as octal up to the first 8 or 9, as strtoul(..., 8) would, and
// truncated to 32 bits. Without GENERATION the generation is 0.
func (e masterEnv) parseGeneration() (uint32, error) {
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
