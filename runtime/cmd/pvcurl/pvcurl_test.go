package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/pantavisor"
)

// startDaemon runs pantavisor in-process (appengine mode, empty revision 0)
// and returns its pv-ctrl socket.
func startDaemon(t *testing.T) string {
	t.Helper()
	storage := t.TempDir()
	os.MkdirAll(filepath.Join(storage, "trails", "0", ".pvr"), 0o755)
	os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(`{"#spec":"pantavisor-service-system@1"}`), 0o644)
	run := filepath.Join(t.TempDir(), "run")
	d, err := pantavisor.New(pantavisor.Options{
		Cmdline:   "pv_rev=0 pv_appengine",
		Env:       []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + run, "PV_DEBUG_SSH=0"},
		BuildInfo: "pvcurl test build\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		if _, err := d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-exited })
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not ready")
	}
	return filepath.Join(run, "pv-ctrl")
}

// pvcurl runs the command in-process: stdout, stderr, exit status.
func pvcurl(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	code := 0
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.msg != "" {
			errb.WriteString(ee.msg)
		}
	} else if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out.String(), errb.String(), code
}

func TestPvcurl(t *testing.T) {
	sock := startDaemon(t)
	s := "--unix-socket"
	if out, errs, code := pvcurl(t, "", s, sock, "/buildinfo"); out != "pvcurl test build\n" || code != 0 {
		t.Errorf("pvcurl /buildinfo = %q, %q, exit %d", out, errs, code)
	}
	// the seeds' form: method first, URL endpoint, data after it
	if _, errs, code := pvcurl(t, "", "-X", "PUT", s, sock, "http://localhost/user-meta/pvcurl.key", "--data", "one"); code != 0 {
		t.Fatalf("pvcurl -X PUT --data = %q, exit %d", errs, code)
	}
	if out, _, _ := pvcurl(t, "", s, sock, "/user-meta"); !strings.Contains(out, `"pvcurl.key":"one"`) {
		t.Errorf("user-meta after PUT = %q, want pvcurl.key one", out)
	}
	// @- data from stdin, newlines stripped as curl's --data does
	if _, errs, code := pvcurl(t, "two\n", "-XPUT", "-s", s+"="+sock, "/user-meta/pvcurl.key", "-d", "@-"); code != 0 {
		t.Fatalf("pvcurl -d @- = %q, exit %d", errs, code)
	}
	if out, _, _ := pvcurl(t, "", s, sock, "/user-meta"); !strings.Contains(out, `"pvcurl.key":"two"`) {
		t.Errorf("user-meta after -d @- = %q, want two", out)
	}
	// HTTP errors: body and status shown, exit 0; 22 with -f
	out, _, code := pvcurl(t, "", s, sock, "-s", "-w", `\n%{http_code}\n`, "-X", "DELETE", "/user-meta/missing")
	if code != 0 || !strings.HasSuffix(out, "\n404\n") || !strings.Contains(out, "not exist") {
		t.Errorf("pvcurl -w on a missing key = %q, exit %d; want the error body and 404", out, code)
	}
	if _, _, code := pvcurl(t, "", "-sf", s, sock, "-XDELETE", "/user-meta/missing"); code != exitHTTP {
		t.Errorf("pvcurl -f on 404: exit %d, want %d", code, exitHTTP)
	}
	if out, _, _ := pvcurl(t, "", "-i", s, sock, "/buildinfo"); !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(out, "\r\n\r\npvcurl test build\n") {
		t.Errorf("pvcurl -i = %q, want the status line, headers and body", out)
	}
	if _, errs, _ := pvcurl(t, "", "-v", s, sock, "/buildinfo"); !strings.Contains(errs, "> GET /buildinfo") || !strings.Contains(errs, "< HTTP/1.1 200 OK") {
		t.Errorf("pvcurl -v stderr = %q", errs)
	}

	// an object uploaded (streamed) and read back into a file
	dir := t.TempDir()
	data := bytes.Repeat([]byte("object data "), 100000)
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	src := filepath.Join(dir, "obj")
	os.WriteFile(src, data, 0o644)
	if out, errs, code := pvcurl(t, "", s, sock, "-T", src, "-w", "%{http_code}", "/objects/"+sha); code != 0 || !strings.HasSuffix(out, "200") {
		t.Fatalf("pvcurl --upload-file = %q, %q, exit %d", out, errs, code)
	}
	dst := filepath.Join(dir, "back")
	if _, errs, code := pvcurl(t, "", s, sock, "-o", dst, "/objects/"+sha); code != 0 {
		t.Fatalf("pvcurl -o = %q, exit %d", errs, code)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Errorf("object read back: %d bytes, want %d", len(got), len(data))
	}
}

func TestPvcurlErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--unix-socket", filepath.Join(dir, "none"), "/buildinfo"}, exitConnect},
		{[]string{"--unix-socket", filepath.Join(dir, "none")}, exitUsage},
		{[]string{"--unix-socket"}, exitUsage},
		{[]string{"--bogus", "/x"}, exitUsage},
		{[]string{"/a", "/b"}, exitUsage},
		{[]string{"--connect-timeout", "x", "/a"}, exitUsage},
		{[]string{"-d", "x", "-T", "f", "/a"}, exitUsage},
		{[]string{"-d", "@" + filepath.Join(dir, "none"), "/a"}, exitRead},
		{[]string{"-X", "GE T", "/a"}, exitUsage},
	} {
		_, errs, code := pvcurl(t, "", tc.args...)
		if code != tc.code || errs == "" {
			t.Errorf("pvcurl %q: exit %d, stderr %q; want exit %d and a message", tc.args, code, errs, tc.code)
		}
	}
	// -s hides the message, -S shows it again
	if _, errs, code := pvcurl(t, "", "-s", "--unix-socket", filepath.Join(dir, "none"), "/a"); code != exitConnect || errs != "" {
		t.Errorf("pvcurl -s: exit %d, stderr %q; want %d, silent", code, errs, exitConnect)
	}
	if _, errs, _ := pvcurl(t, "", "-sS", "--unix-socket", filepath.Join(dir, "none"), "/a"); errs == "" {
		t.Errorf("pvcurl -sS printed nothing")
	}
}

func TestWriteOut(t *testing.T) {
	resp := &http.Response{StatusCode: 204, Header: http.Header{"Content-Type": {"text/plain"}}}
	for in, want := range map[string]string{
		`%{http_code}\n`:                    "204\n",
		`%{response_code} %{size_download}`: "204 12",
		`%{content_type}\t%%\\`:             "text/plain\t%\\",
		`%{unknown}x%{unterminated`:         "x%{unterminated",
		`plain \q`:                          `plain \q`,
	} {
		if got := writeOut(in, resp, 12); got != want {
			t.Errorf("writeOut(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzWriteOut(f *testing.F) {
	f.Add(`%{http_code}\n%%\`)
	f.Add(`%{`)
	resp := &http.Response{StatusCode: 200, Header: http.Header{}}
	f.Fuzz(func(t *testing.T, format string) {
		_ = writeOut(format, resp, 1)
	})
}

func FuzzParseArgs(f *testing.F) {
	f.Add("-X\x00PUT\x00--unix-socket\x00/s\x00/x\x00--data\x00a")
	f.Add("-sSiv\x00-w\x00%{http_code}\x00http://localhost/a?b=c")
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		for _, a := range args {
			if strings.HasPrefix(strings.TrimLeft(a, "-dT"), "@") {
				return // no file reads from the fuzzer
			}
		}
		r, err := parseArgs(args, strings.NewReader(""))
		if err == nil {
			if r.endpoint == "" || r.method == "" {
				t.Errorf("parseArgs(%q) = %+v without endpoint or method", args, r)
			}
			_, _ = r.path()
		}
	})
}
