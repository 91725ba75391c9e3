package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// instance is the Postfix instance whose cache scachectl talks to: the
// configuration directory named by -c or MAIL_CONFIG, as Postfix's own
// commands take it, or the default instance when neither is given.
type instance struct {
	configDir string // "" for the default instance
	from      string // "-c" or "MAIL_CONFIG" when configDir is set
}

// pickInstance applies Postfix's rule: -c wins over MAIL_CONFIG, and an
// empty MAIL_CONFIG is no MAIL_CONFIG.
func pickInstance(flagC string, lookupEnv func(string) (string, bool)) instance {
	if flagC != "" {
		return instance{configDir: flagC, from: "-c"}
	}
	if v, ok := lookupEnv("MAIL_CONFIG"); ok && v != "" {
		return instance{configDir: v, from: "MAIL_CONFIG"}
	}
	return instance{}
}

// postconfArgs are the arguments that point postconf at the instance.
func (in instance) postconfArgs(args ...string) []string {
	if in.configDir == "" {
		return args
	}
	return append([]string{"-c", in.configDir}, args...)
}

// postconf runs postconf -h for names in the instance and returns one
// value per name. It reports exec.ErrNotFound when there is no postconf.
func (in instance) postconf(ctx context.Context, names ...string) ([]string, error) {
	path, err := exec.LookPath("postconf")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, in.postconfArgs(append([]string{"-h"}, names...)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("postconf %s: %s", strings.Join(in.postconfArgs(names...), " "), msg)
	}
	vals := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(vals) != len(names) {
		return nil, fmt.Errorf("postconf %s: %d values for %d names", strings.Join(in.postconfArgs(names...), " "), len(vals), len(names))
	}
	for i := range vals {
		vals[i] = strings.TrimSpace(vals[i])
	}
	return vals, nil
}

// socket returns the instance's cache socket,
// queue_directory/private/connection_cache_service_name.
//
// A named instance (-c, MAIL_CONFIG) must exist: a missing directory or
// main.cf, or a postconf that fails on it, is an error, never another
// instance's socket. Without postconf its main.cf is read directly
// (settings written with $name need postconf). The default instance falls
// back to Postfix's compiled-in defaults when postconf is missing or fails.
func (in instance) socket(ctx context.Context) (string, error) {
	if in.configDir == "" {
		dir, name := defaultQueueDir, defaultServiceName
		if v, err := in.postconf(ctx, "queue_directory", "connection_cache_service_name"); err == nil && v[0] != "" && v[1] != "" {
			dir, name = v[0], v[1]
		}
		return filepath.Join(dir, "private", name), nil
	}
	mainCF := filepath.Join(in.configDir, "main.cf")
	if _, err := os.Stat(mainCF); err != nil {
		return "", fmt.Errorf("%s %s names no Postfix instance: %w", in.from, in.configDir, err)
	}
	v, err := in.postconf(ctx, "queue_directory", "connection_cache_service_name")
	if errors.Is(err, exec.ErrNotFound) {
		v, err = readMainCF(mainCF, "queue_directory", "connection_cache_service_name")
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", in.from, in.configDir, err)
	}
	if v[0] == "" {
		v[0] = defaultQueueDir
	}
	if v[1] == "" {
		v[1] = defaultServiceName
	}
	return filepath.Join(v[0], "private", v[1]), nil
}

// readMainCF returns the values of names in a main.cf, "" for a name it
// does not set, without postconf: "name = value" lines, continuation lines
// starting with white space, comments. A value that refers to another
// parameter ($name) cannot be expanded here and is an error.
func readMainCF(path string, names ...string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	set := map[string]string{}
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				set[last] = strings.TrimSpace(set[last] + " " + trimmed)
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			last = ""
			continue
		}
		last = strings.TrimSpace(k)
		set[last] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	vals := make([]string, len(names))
	for i, n := range names {
		vals[i] = set[n]
		if strings.Contains(vals[i], "$") {
			return nil, fmt.Errorf("%s: %s = %s refers to other parameters: install postconf (Postfix) or give -socket", path, n, vals[i])
		}
	}
	return vals, nil
}
