package mastercompat

import (
	"io"
	"strings"
)

// logOptions say where a master child logs.
type logOptions struct {
	Params     Params // syslog_facility, maillog_file(_prefixes), postlog_service_name, queue_directory, myhostname
	ConfigDir  string // for fatal texts
	Tag        string // "<syslog_name>/<name>", e.g. "postfix/scache"
	PID        int
	SyslogPath string    // "" means /dev/log
	Stderr     io.Writer // non-nil (-V): also write "TAG: text" lines here
}

// openLogSink opens the log sink Postfix's maillog_client_init would choose:
// postlog datagrams to $queue_directory/public/$postlog_service_name when
// maillog_file is set (which must start with one of maillog_file_prefixes),
// else syslog with syslog_facility. Call it before chroot. Configuration
// errors are [*FatalError]s; an unreachable log socket is not an error
// (the lines are dropped, as Postfix drops them).
func openLogSink(o logOptions) (logSink, io.Closer, error) {
	var (
		sink   logSink
		closer io.Closer
	)
	p := o.Params
	if p.MaillogFile != "" {
		ok := false
		for _, pfx := range strings.FieldsFunc(p.MaillogFilePrefixes, func(r rune) bool { return r == ',' || strings.ContainsRune(spaceChars, r) }) {
			if strings.HasPrefix(p.MaillogFile, pfx) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, nil, fatalf("maillog_file value '%s' does not match any prefix in maillog_file_prefixes", p.MaillogFile)
		}
		pl, _ := dialPostlog(p.QueueDirectory+"/public/"+p.PostlogServiceName, o.Tag, p.MyHostname, o.PID)
		sink, closer = pl, pl
	} else {
		sl, err := dialSyslog(o.SyslogPath, o.Tag, o.PID, p.SyslogFacility)
		if err != nil {
			return nil, nil, fatalf("file %s/main.cf: parameter syslog_facility: unrecognized value: %s", o.ConfigDir, p.SyslogFacility)
		}
		sink, closer = sl, sl
	}
	if o.Stderr != nil {
		sink = newMultiSink(sink, &writerSink{W: o.Stderr, Tag: o.Tag})
	}
	return sink, closer, nil
}
