package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"time"
)

// connect dials e.socket and turns the usual failures into messages that
// say what to do.
func (e *env) connect() (cacheConn, error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.timeout)
	defer cancel()
	c, err := e.dial(ctx, e.socket, e.timeout)
	if err != nil {
		return nil, socketError(e.socket, err)
	}
	return c, nil
}

// socketError explains a failure to connect to path.
func socketError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("no cache socket at %s: is goscache (or Postfix's scache) running? choose another socket with -socket PATH: %w", path, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("permission denied on %s: the cache socket is normally only reachable by root or the postfix user (run scachectl as one of them): %w", path, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing is listening on %s (a stale socket of a stopped cache?): %w", path, err)
	case errors.Is(err, syscall.ENOTSOCK):
		return fmt.Errorf("%s is not a socket: %w", path, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from %s within the -timeout: %w", path, err)
	}
	return fmt.Errorf("connect to %s: %w", path, err)
}

// dialScache connects to a cache speaking connection_cache_protocol.
func dialScache(ctx context.Context, path string, timeout time.Duration) (cacheConn, error) {
	return nil, errors.New("not yet wired: waiting for scache.Client")
}
