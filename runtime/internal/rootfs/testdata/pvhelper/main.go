// Command pvhelper is a tiny static helper placed in test container images.
//
//	pvhelper http <unix-socket> <METHOD> <path> [body]
//
// sends one HTTP request over a unix socket (the pv-ctrl protocol) and
// prints the status code on the first line, then the body.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pvhelper:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) < 4 || args[0] != "http" {
		return fmt.Errorf("usage: pvhelper http <socket> <METHOD> <path> [body]")
	}
	sock, method, path := args[1], args[2], args[3]
	var body io.Reader
	if len(args) > 4 {
		body = strings.NewReader(args[4])
	}
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequest(method, "http://localhost"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintln(out, resp.StatusCode)
	_, err = io.Copy(out, resp.Body)
	return err
}
