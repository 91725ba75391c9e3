package server_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/goscache/goscache/scache/client"
	"github.com/goscache/goscache/scache/server"
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
	srv := server.New(server.Options{}) // defaults: 2s ttl limit, no logging
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	c, err := client.Dial(context.Background(), path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	st, _ := c.SaveDest("smtp\nexample.com\n", "destination=example.com\n", "smtp\n192.0.2.10\n25\n0\n", 2*time.Second)
	fmt.Println("save_dest status:", st)
	res, _ := c.FindDest("smtp\nexample.com\n")
	fmt.Println("find_dest status:", res.Status, "fd:", res.FD) // bound, but no session cached
	// Output:
	// save_dest status: ok
	// find_dest status: fail fd: -1
}
