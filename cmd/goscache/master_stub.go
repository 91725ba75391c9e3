package main

// TEMPORARY: stands in for master.go (master(8) mode), which another
// change adds; that change deletes this file.

import (
	"context"
	"errors"
	"io"
)

func runMaster(ctx context.Context, args []string, stderr io.Writer) error {
	return errors.New("master mode not built")
}
