//go:build cgo && linux

package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/app"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
)

func debianImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := ocitest.HostDebian(ocitest.HostDebianConfig())
	if errors.Is(err, ocitest.ErrNoHostBinaries) {
		testenv.Skipf(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestAppRunsInLXC converts an OCI layout and a docker save archive of the
// same image with app.Add, mounts the root.squashfs as Pantavisor does
// (loop squashfs under an overlay) and runs the app's own
// lxc.container.conf under real LXC: the entrypoint's output shows the
// image's env and working dir, and the flattened layers.
func TestAppRunsInLXC(t *testing.T) {
	testenv.NeedRoot(t, "runs LXC containers")
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "%v", err)
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs")
	}
	img := debianImage(t)
	tmp := t.TempDir()
	if err := ocitest.WriteLayout(filepath.Join(tmp, "layout"), "v1", img); err != nil {
		t.Fatal(err)
	}
	if err := ocitest.WriteArchive(filepath.Join(tmp, "img.tar"), "pv/oci-test:v1", img); err != nil {
		t.Fatal(err)
	}
	for i, from := range []string{"oci:" + tmp + "/layout:v1", "docker-archive:" + tmp + "/img.tar"} {
		name := []string{"ocilayout", "dockerarchive"}[i]
		t.Run(name, func(t *testing.T) {
			checkout := t.TempDir()
			src, err := app.Add(context.Background(), checkout, name, from, map[string]any{"PV_GROUP": "app"}, app.Options{Platform: "linux/amd64", Comp: "gzip"})
			if err != nil {
				t.Fatal(err)
			}
			dig, _ := os.ReadFile(filepath.Join(checkout, name, app.DigestFile))
			if string(dig) != src.DockerDigest || !strings.HasPrefix(src.DockerDigest, "sha256:") {
				t.Errorf("digest file %q, src.json docker_digest %q", dig, src.DockerDigest)
			}
			runLXC(t, checkout, name, []string{"oci-start", "cwd=/srv/work", "greeting=hello from the image",
				"dynamic-printenv-ok", "new", "whiteout-ok", "hardlink-ok"})
		})
	}
}

func runLXC(t *testing.T, checkout, name string, want []string) {
	vols := filepath.Join(t.TempDir(), "volumes")
	root := filepath.Join(vols, name, "root.squashfs")
	for _, d := range []string{root, filepath.Join(vols, name, "lxc-overlay", "upper")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", filepath.Join(checkout, name, app.RootFile), root).CombinedOutput(); err != nil {
		testenv.Skipf(t, "mount squashfs: %v: %s", err, out)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	conf, err := os.ReadFile(filepath.Join(checkout, name, app.ConfFile))
	if err != nil {
		t.Fatal(err)
	}
	// The app's own configuration, at this test's volumes directory.
	c := strings.ReplaceAll(string(conf), "/volumes/", vols+"/")
	confFile := filepath.Join(t.TempDir(), "lxc.container.conf")
	os.WriteFile(confFile, []byte(c), 0o644)
	ctr := name + "-" + strings.ReplaceAll(filepath.Base(vols[:len(vols)-8]), "_", "")
	c2, err := lxc.Start(context.Background(), slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		lxc.Spec{Name: "pvt-oci-" + ctr, LXCPath: filepath.Join(t.TempDir(), "lxc"), ConfigFile: confFile, StopTimeout: time.Second}) // sh as PID 1 ignores the halt signal
	if err != nil {
		t.Fatalf("Start() = %v\nconf:\n%s", err, c)
	}
	defer c2.Stop(context.Background())
	con := newConsole(c2.Console())
	con.await(t, "oci-ready")
	got := con.text()
	for _, w := range want {
		if !strings.Contains(got, w+"\r\n") && !strings.Contains(got, w+"\n") {
			t.Errorf("console lacks line %q:\n%s", w, got)
		}
	}
	var run map[string]any
	b, _ := os.ReadFile(filepath.Join(checkout, name, app.RunFile))
	if json.Unmarshal(b, &run) != nil || run["group"] != "app" || run["type"] != "lxc" {
		t.Errorf("run.json = %s", b)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

type console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
	eof  chan struct{}
}

func newConsole(f *os.File) *console {
	c := &console{more: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		defer close(c.eof)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *console) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *console) await(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		c.mu.Lock()
		got, more := c.buf.String(), c.more
		c.mu.Unlock()
		if strings.Contains(got, s) {
			return
		}
		select {
		case <-more:
		case <-c.eof:
			t.Fatalf("console ended without %q:\n%s", s, got)
		case <-deadline:
			t.Fatalf("no %q on the console within 60s:\n%s", s, got)
		}
	}
}

// TestNamedUserRunsInLXC: an image whose User is "svc:staff" runs its
// entrypoint as the ids the image's /etc/passwd and /etc/group give.
func TestNamedUserRunsInLXC(t *testing.T) {
	testenv.NeedRoot(t, "runs LXC containers")
	if err := lxc.Available(); err != nil {
		testenv.Skipf(t, "%v", err)
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs")
	}
	l, err := ocitest.Layer(ocitest.File("etc/passwd", []byte("root:x:0:0::/root:/bin/sh\nsvc:x:1001:1001::/srv:/bin/sh\n"), 0o644),
		ocitest.File("etc/group", []byte("root:x:0:\nstaff:x:50:svc\n"), 0o644))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(debianImage(t), l)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ocitest.HostDebianConfig()
	cfg.User = "svc:staff"
	cfg.Cmd = []string{`echo oci-start; echo ids=$(/bin/busybox id -u):$(/bin/busybox id -g); echo oci-ready; exec sleep 3600`}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := ocitest.WriteLayout(filepath.Join(tmp, "layout"), "v1", img); err != nil {
		t.Fatal(err)
	}
	checkout := t.TempDir()
	if _, err := app.Add(context.Background(), checkout, "named", "oci:"+tmp+"/layout:v1", map[string]any{"PV_GROUP": "app"},
		app.Options{Platform: "linux/amd64", Comp: "gzip"}); err != nil {
		t.Fatal(err)
	}
	runLXC(t, checkout, "named", []string{"oci-start", "ids=1001:50"})
}
