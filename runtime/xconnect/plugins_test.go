package xconnect

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/ctrl"
	"golang.org/x/sys/unix"
)

// The unix and wayland plugins pass descriptors (SCM_RIGHTS) with the
// bytes they came with, both ways: a Wayland client's shm buffers, a
// compositor's keymap.
func TestMeshPassesFDs(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: dir + "/wayland.sock", Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The provider reads the file it is passed and answers with a pipe
	// whose other end holds "pong".
	errc := make(chan error, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || string(buf[:n]) != "buf" || len(rights(oob[:oobn])) != 1 {
			errc <- errors.New("provider: no descriptor with the bytes")
			return
		}
		f := os.NewFile(uintptr(rights(oob[:oobn])[0]), "passed")
		got, _ := io.ReadAll(f)
		f.Close()
		r, w, _ := os.Pipe()
		_, _ = w.WriteString("pong")
		w.Close()
		_, _, err = c.WriteMsgUnix([]byte("got "+string(got)), unix.UnixRights(int(r.Fd())), nil)
		r.Close()
		errc <- err
	}()
	m := NewMesh(testLog(t), "")
	defer m.Close()
	l := selfLink("wayland", dir)
	if err := m.Reconcile([]ctrl.XConnectLink{l}); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: l.Target, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := filepath.Join(dir, "shm")
	if err := os.WriteFile(data, []byte("ping"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WriteMsgUnix([]byte("buf"), unix.UnixRights(int(f.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil || string(buf[:n]) != "got ping" {
		t.Fatalf("consumer got %q, %v; want \"got ping\"", buf[:n], err)
	}
	fds := rights(oob[:oobn])
	if len(fds) != 1 {
		t.Fatalf("consumer got %d descriptors, want 1", len(fds))
	}
	p := os.NewFile(uintptr(fds[0]), "pipe")
	defer p.Close()
	if got, _ := io.ReadAll(p); string(got) != "pong" {
		t.Errorf("passed pipe holds %q, want pong", got)
	}
}

// A drm link's target is a device node with the provider node's number,
// mode and owner; role "render" picks the render node of the same device
// (sysfs); removal unlinks it. The test has no DRM device: the major is
// /dev/null's (1) for the test, the provider's node made here.
func TestMeshDRMNode(t *testing.T) {
	testenv.NeedRoot(t, "mknod")
	dir := t.TempDir()
	old := drmMajor
	drmMajor = 1
	defer func() { drmMajor = old }()
	card := unix.Mkdev(1, 3)
	if err := unix.Mknod(dir+"/card0", unix.S_IFCHR|0o660, int(card)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir+"/card0", 0o660); err != nil { // not the umask's
		t.Fatal(err)
	}
	if err := os.Chown(dir+"/card0", 0, 44); err != nil {
		t.Fatal(err)
	}
	sys := filepath.Join(dir, "sys", "dev", "char", "1:3", "device", "drm", "renderD128")
	if err := os.MkdirAll(sys, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sys+"/dev", []byte("1:128\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := NewMesh(testLog(t), "")
	m.sysRoot = filepath.Join(dir, "sys")
	defer m.Close()
	master := selfLink("drm", dir)
	master.Role, master.Socket, master.Target = "master", dir+"/card0", dir+"/consumer/dev/dri/card0"
	render := master
	render.Role, render.Target = "render", dir+"/consumer/dev/dri/renderD128"
	if err := m.Reconcile([]ctrl.XConnectLink{master, render}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		rdev uint64
	}{{master.Target, card}, {render.Target, unix.Mkdev(1, 128)}} {
		var st unix.Stat_t
		if err := unix.Lstat(tc.path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != unix.S_IFCHR|0o660 || uint64(st.Rdev) != tc.rdev || st.Gid != 44 {
			t.Errorf("%s: mode %o rdev %d:%d gid %d; want char 660, %d:%d, gid 44", tc.path, st.Mode,
				unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), st.Gid, unix.Major(tc.rdev), unix.Minor(tc.rdev))
		}
	}
	// Not a DRM device in the provider, or a file at the target: refused.
	bad := master
	bad.Socket, bad.Target = dir+"/shm", dir+"/consumer/dev/x"
	if err := os.WriteFile(bad.Socket, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile([]ctrl.XConnectLink{master, render, bad}); !errors.Is(err, errNotDevice) {
		t.Errorf("Reconcile(a regular file as node) = %v, want errNotDevice", err)
	}
	if err := m.Reconcile([]ctrl.XConnectLink{master}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(render.Target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed link's node: Lstat = %v, want not exist", err)
	}
	m.Close()
	if _, err := os.Lstat(master.Target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close: Lstat = %v, want not exist", err)
	}
}
