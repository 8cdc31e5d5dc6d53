//go:build cgo && linux

package lxc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"golang.org/x/sys/unix"
)

type connKey struct{}

// whoami serves the caller's /proc/<pid>/cgroup, found through
// SO_PEERCRED, like the pv-ctrl caller identity does.
func whoami(w http.ResponseWriter, r *http.Request) {
	uc, ok := r.Context().Value(connKey{}).(*net.UnixConn)
	if !ok {
		http.Error(w, "not a unix conn", 500)
		return
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cred.Pid))
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Write(cg)
}

// TestCallerIdentity calls a pv-ctrl-like socket from inside containers of
// both roles and checks the cgroup line the server sees for the caller.
func TestCallerIdentity(t *testing.T) {
	needLXC(t)
	if testing.Short() {
		t.Skip("skipping: builds the pvhelper binary")
	}
	helper, err := rootfs.Helper("")
	if err != nil {
		t.Fatalf("rootfs.Helper() error = %v", err)
	}
	for _, mgmt := range []bool{false, true} {
		name := "nobody"
		if mgmt {
			name = "mgmt"
		}
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, name, "", rootfs.File{Path: "/bin/pvhelper", Mode: 0o755, Data: helper})
			w.spec.Mgmt = mgmt
			sock := filepath.Join(w.spec.RunDir, "pv-ctrl")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{
				Handler:     http.HandlerFunc(whoami),
				ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
			}
			go srv.Serve(l)
			defer srv.Close()

			c := startReady(t, w)
			out := filepath.Join(t.TempDir(), "out")
			f, _ := os.Create(out)
			status, err := Attach(w.spec.LXCPath, name, []string{"/bin/pvhelper", "http", "/pantavisor/pv-ctrl", "GET", "/whoami"}, nil, os.Stdin, f, f)
			f.Close()
			got, _ := os.ReadFile(out)
			t.Logf("caller cgroup seen by the server (%s):\n%s", name, got)
			if err != nil || status != 0 || !strings.HasPrefix(string(got), "200\n") || !v2Under(string(got), "/lxc/"+name) {
				t.Errorf("pvhelper GET /whoami = %d, %v, %q, want 200 with 0::/lxc/%s[/…]", status, err, got, name)
			}
			if err := c.Stop(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Stop() error = %v", err)
			}
			w.finish(t)
		})
	}
}

// v2Under reports whether the cgroup2 line of a /proc/<pid>/cgroup text is
// dir or below it (attached processes sit in dir/.lxc).
func v2Under(cgroup, dir string) bool {
	for _, l := range strings.Split(cgroup, "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p == dir || strings.HasPrefix(p, dir+"/")
		}
	}
	return false
}
