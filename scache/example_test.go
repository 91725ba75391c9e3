package scache_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/goscache/goscache/scache"
)

func ExampleServer() {
	dir, _ := os.MkdirTemp("", "scache-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "scache")
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := scache.NewServer(nil, scache.Options{}) // defaults: 2s ttl limit, no logging
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	c, err := scache.Dial(context.Background(), path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	st, _ := c.SaveDest(2*time.Second, "smtp\nexample.com\n", "destination=example.com\n", "smtp\n192.0.2.10\n25\n0\n")
	fmt.Println("save_dest status:", st)
	fd, _, _, st, _ := c.FindDest("smtp\nexample.com\n")
	fmt.Println("find_dest status:", st, "fd:", fd) // bound, but no session cached
	// Output:
	// save_dest status: 0
	// find_dest status: 2 fd: -1
}
