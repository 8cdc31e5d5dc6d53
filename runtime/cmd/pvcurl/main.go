// Command pvcurl is the seeds' small curl for Pantavisor's control socket:
//
//	pvcurl --unix-socket <socket-path> [OPTIONS] <endpoint>
//
//	pvcurl --unix-socket /run/pantavisor/pv/pv-ctrl /buildinfo
//	pvcurl -X PUT --unix-socket /run/pantavisor/pv/pv-ctrl /signal \
//	  --data '{"name":"my-app","signal":15}'
//
// Options, as curl's: -X/--request, -H/--header (repeatable), -d/--data,
// --data-binary, --data-raw (@file and @- read a file or stdin; --data
// strips its newlines as curl does), -T/--upload-file (streamed, PUT),
// -s/--silent, -S/--show-error, -i/--include, -v/--verbose, -o/--output,
// -w/--write-out (%{http_code}, %{response_code}, %{size_download},
// %{content_type}, \n), -f/--fail, --connect-timeout and -m/--max-time
// (seconds). Without --unix-socket the first existing of upstream's
// socket paths is used. The endpoint is a path ("/containers") or a URL
// whose path is taken ("http://localhost/containers").
//
// Exit status as curl's: 0 (also for HTTP error answers, unless -f), 2
// usage, 7 cannot connect, 22 HTTP error with -f, 23 write error, 26 read
// error, 28 timeout.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "pvcurl:", ee.msg)
		}
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "pvcurl:", err)
		os.Exit(1)
	}
}
