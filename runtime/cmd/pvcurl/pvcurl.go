package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/ctrl/client"
)

// curl's exit codes that pvcurl uses.
const (
	exitUsage    = 2
	exitConnect  = 7
	exitHTTP     = 22
	exitWrite    = 23
	exitRead     = 26
	exitTimeout  = 28
	exitInternal = 1
)

// exitError ends the program with code, printing msg (when not empty).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

// request is a parsed command line.
type request struct {
	socket         string
	method         string
	headers        []string
	data           []byte
	hasData        bool
	uploadFile     string
	silent         bool
	showError      bool
	include        bool
	verbose        bool
	fail           bool
	output         string
	writeOut       string
	connectTimeout time.Duration
	maxTime        time.Duration
	endpoint       string
}

// parseArgs reads curl-style arguments; options and the endpoint may come
// in any order. stdin serves @- data.
func parseArgs(args []string, stdin io.Reader) (*request, error) {
	r := &request{}
	value := func(i *int, name string) (string, error) {
		if *i+1 >= len(args) {
			return "", fmt.Errorf("option %s: requires parameter", name)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, inline, hasInline := a, "", false
		if strings.HasPrefix(a, "--") {
			name, inline, hasInline = strings.Cut(a, "=")
		} else if len(a) > 2 && a[0] == '-' && strings.ContainsRune("XHdoTwm", rune(a[1])) {
			name, inline, hasInline = a[:2], a[2:], true // -XPUT
		}
		get := func() (string, error) {
			if hasInline {
				return inline, nil
			}
			return value(&i, name)
		}
		var err error
		var v string
		switch name {
		case "--unix-socket":
			r.socket, err = get()
		case "-X", "--request":
			r.method, err = get()
		case "-H", "--header":
			v, err = get()
			r.headers = append(r.headers, v)
		case "-d", "--data", "--data-ascii", "--data-binary", "--data-raw":
			if v, err = get(); err == nil {
				err = r.addData(name, v, stdin)
			}
		case "-T", "--upload-file":
			r.uploadFile, err = get()
		case "-o", "--output":
			r.output, err = get()
		case "-w", "--write-out":
			r.writeOut, err = get()
		case "--connect-timeout", "-m", "--max-time":
			if v, err = get(); err == nil {
				var f float64
				f, err = strconv.ParseFloat(v, 64)
				if err != nil || f < 0 || f > 1e6 {
					err = fmt.Errorf("option %s: expected a proper number of seconds", name)
				}
				d := time.Duration(f * float64(time.Second))
				if name == "--connect-timeout" {
					r.connectTimeout = d
				} else {
					r.maxTime = d
				}
			}
		case "--silent":
			r.silent = true
		case "--show-error":
			r.showError = true
		case "--include":
			r.include = true
		case "--verbose":
			r.verbose = true
		case "--fail":
			r.fail = true
		default:
			switch {
			case a == "-" || !strings.HasPrefix(a, "-"):
				if r.endpoint != "" {
					return nil, fmt.Errorf("one endpoint only: %q and %q", r.endpoint, a)
				}
				r.endpoint = a
			case !strings.HasPrefix(a, "--") && strings.Trim(a[1:], "sSivfL") == "":
				// a cluster of flags: -sS, -sv…; -L is accepted and
				// means nothing here (pv-ctrl does not redirect)
				for _, c := range a[1:] {
					switch c {
					case 's':
						r.silent = true
					case 'S':
						r.showError = true
					case 'i':
						r.include = true
					case 'v':
						r.verbose = true
					case 'f':
						r.fail = true
					}
				}
			default:
				return nil, fmt.Errorf("option %s: is unknown", a)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if r.endpoint == "" {
		return nil, errors.New("no endpoint specified")
	}
	if r.hasData && r.uploadFile != "" {
		return nil, errors.New("--data and --upload-file cannot be combined")
	}
	if r.method == "" {
		switch {
		case r.uploadFile != "":
			r.method = http.MethodPut
		case r.hasData:
			r.method = http.MethodPost
		default:
			r.method = http.MethodGet
		}
	}
	if r.method == "" || strings.ContainsAny(r.method, " \t\r\n") {
		return nil, fmt.Errorf("bad method %q", r.method)
	}
	return r, nil
}

// maxData bounds --data read from a file or stdin (uploads of any size go
// through --upload-file, streamed).
const maxData = 64 << 20

// addData appends one --data argument, as curl joins several with '&'.
func (r *request) addData(opt, v string, stdin io.Reader) error {
	var b []byte
	if rest, ok := strings.CutPrefix(v, "@"); ok && opt != "--data-raw" {
		var src io.Reader = stdin
		if rest != "-" {
			f, err := os.Open(rest)
			if err != nil {
				return &exitError{exitRead, fmt.Sprintf("read data: %v", err)}
			}
			defer f.Close()
			src = f
		}
		var err error
		if b, err = io.ReadAll(io.LimitReader(src, maxData+1)); err != nil {
			return &exitError{exitRead, fmt.Sprintf("read data: %v", err)}
		}
		if len(b) > maxData {
			return &exitError{exitRead, fmt.Sprintf("data from %s: more than %d bytes (use --upload-file)", rest, maxData)}
		}
		if opt != "--data-binary" {
			b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
		}
	} else {
		b = []byte(v)
	}
	if r.hasData {
		r.data = append(r.data, '&')
	}
	r.data = append(r.data, b...)
	r.hasData = true
	return nil
}

// path returns the request path of the endpoint.
func (r *request) path() (string, error) {
	ep := r.endpoint
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return "", fmt.Errorf("endpoint: %w", err)
		}
		ep = u.RequestURI()
	}
	if !strings.HasPrefix(ep, "/") {
		ep = "/" + ep
	}
	if _, err := url.ParseRequestURI(ep); err != nil {
		return "", fmt.Errorf("endpoint %q: %w", r.endpoint, err)
	}
	return ep, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	r, err := parseArgs(args, stdin)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee
		}
		return &exitError{exitUsage, err.Error() + "\nusage: pvcurl --unix-socket <socket-path> [OPTIONS] <endpoint>"}
	}
	err = r.do(ctx, stdin, stdout, stderr)
	var ee *exitError
	if errors.As(err, &ee) && r.silent && !r.showError {
		ee.msg = ""
	}
	return err
}

// do sends the request and writes the answer.
func (r *request) do(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	socket := r.socket
	if socket == "" {
		var err error
		if socket, err = client.Detect(client.Sockets()); err != nil {
			return &exitError{exitConnect, err.Error()}
		}
	}
	path, err := r.path()
	if err != nil {
		return &exitError{exitUsage, err.Error()}
	}
	if r.maxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.maxTime)
		defer cancel()
	}
	var body io.Reader
	size := int64(0)
	if r.hasData {
		body, size = bytes.NewReader(r.data), int64(len(r.data))
	}
	if r.uploadFile != "" {
		if r.uploadFile == "-" {
			body, size = stdin, -1
		} else {
			f, err := os.Open(r.uploadFile)
			if err != nil {
				return &exitError{exitRead, fmt.Sprintf("upload: %v", err)}
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return &exitError{exitRead, fmt.Sprintf("upload: %v", err)}
			}
			body, size = f, fi.Size()
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, "http://localhost"+path, body)
	if err != nil {
		return &exitError{exitUsage, err.Error()}
	}
	req.ContentLength = size
	if body == nil {
		req.Body = nil
	}
	if r.hasData {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range r.headers {
		k, v, ok := strings.Cut(h, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue // curl ignores a header without a colon
		}
		if v = strings.TrimSpace(v); v == "" {
			req.Header.Del(k) // "Name:" removes a header, as in curl
			continue
		}
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	if r.verbose {
		fmt.Fprintf(stderr, "* connecting to %s\n> %s %s HTTP/1.1\n", socket, req.Method, path)
		for k, vs := range req.Header {
			for _, v := range vs {
				fmt.Fprintf(stderr, "> %s: %s\n", k, v)
			}
		}
		fmt.Fprintln(stderr, ">")
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: r.connectTimeout}
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return requestError(err, socket)
	}
	defer resp.Body.Close()
	if r.verbose {
		fmt.Fprintf(stderr, "< %s %s\n", resp.Proto, resp.Status)
		for k, vs := range resp.Header {
			for _, v := range vs {
				fmt.Fprintf(stderr, "< %s: %s\n", k, v)
			}
		}
		fmt.Fprintln(stderr, "<")
	}
	if r.fail && resp.StatusCode >= 400 {
		return &exitError{exitHTTP, fmt.Sprintf("the requested URL returned error: %d", resp.StatusCode)}
	}
	out := stdout
	if r.output != "" && r.output != "-" {
		f, err := os.Create(r.output)
		if err != nil {
			return &exitError{exitWrite, fmt.Sprintf("output: %v", err)}
		}
		defer f.Close()
		out = f
	}
	if r.include {
		var hb bytes.Buffer
		fmt.Fprintf(&hb, "%s %s\r\n", resp.Proto, resp.Status)
		_ = resp.Header.Write(&hb)
		hb.WriteString("\r\n")
		if _, err := out.Write(hb.Bytes()); err != nil {
			return &exitError{exitWrite, fmt.Sprintf("write: %v", err)}
		}
	}
	n, err := copyBody(out, resp.Body)
	if err != nil {
		return err
	}
	if f, ok := out.(*os.File); ok && out != stdout {
		if err := f.Close(); err != nil {
			return &exitError{exitWrite, fmt.Sprintf("output: %v", err)}
		}
	}
	if r.writeOut != "" {
		if _, err := io.WriteString(stdout, writeOut(r.writeOut, resp, n)); err != nil {
			return &exitError{exitWrite, fmt.Sprintf("write: %v", err)}
		}
	}
	return nil
}

// copyBody copies the answer, telling a failed write from a failed read.
func copyBody(w io.Writer, r io.Reader) (int64, error) {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return n, &exitError{exitWrite, fmt.Sprintf("write: %v", err)}
			}
			n += int64(m)
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			if errors.Is(rerr, context.DeadlineExceeded) {
				return n, &exitError{exitTimeout, "operation timed out"}
			}
			return n, &exitError{exitRead, fmt.Sprintf("read answer: %v", rerr)}
		}
	}
}

// requestError maps a failed request to curl's exit codes.
func requestError(err error, socket string) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &exitError{exitTimeout, fmt.Sprintf("%s: operation timed out", socket)}
	case errors.Is(err, context.Canceled):
		return &exitError{exitInternal, "interrupted"}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return &exitError{exitConnect, fmt.Sprintf("failed to connect to %s: %v", socket, oe.Err)}
	}
	return &exitError{exitRead, err.Error()}
}

// writeOut expands a --write-out format: %{variable}, %% and the escapes
// \n \r \t \\. Unknown variables expand to nothing, as in curl.
func writeOut(format string, resp *http.Response, size int64) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '%' && i+1 < len(format) && format[i+1] == '%':
			b.WriteByte('%')
			i++
		case c == '%' && i+1 < len(format) && format[i+1] == '{':
			end := strings.IndexByte(format[i+2:], '}')
			if end < 0 {
				b.WriteString(format[i:])
				return b.String()
			}
			switch format[i+2 : i+2+end] {
			case "http_code", "response_code":
				fmt.Fprintf(&b, "%03d", resp.StatusCode)
			case "size_download":
				fmt.Fprint(&b, size)
			case "content_type":
				b.WriteString(resp.Header.Get("Content-Type"))
			}
			i += 2 + end
		case c == '\\' && i+1 < len(format):
			switch format[i+1] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '\\':
				b.WriteByte('\\')
			default:
				b.WriteByte(c)
				b.WriteByte(format[i+1])
			}
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
