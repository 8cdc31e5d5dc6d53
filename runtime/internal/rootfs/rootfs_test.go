package rootfs

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func TestBuildReproducible(t *testing.T) {
	if err := Available(); err != nil {
		testenv.Skipf(t, "cannot build images here: %v", err)
	}
	extra := []File{{Path: "/etc/motd", Data: []byte("hello\n")}}
	// Two separate caches: the second build cannot reuse the first.
	a, err := Build(Options{CacheDir: t.TempDir(), Files: extra})
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	b, err := Build(Options{CacheDir: t.TempDir(), Files: extra})
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Errorf("two builds differ: %d vs %d bytes", len(da), len(db))
	}
	if got := string(da[:4]); got != "hsqs" {
		t.Errorf("magic = %q, want hsqs", got)
	}
	// Same cache, same content: same path, no rebuild.
	dir := t.TempDir()
	c1, _ := Build(Options{CacheDir: dir})
	c2, _ := Build(Options{CacheDir: dir})
	if c1 != c2 {
		t.Errorf("cached Build() = %q, want %q", c2, c1)
	}
	c3, _ := Build(Options{CacheDir: dir, Files: extra})
	if c3 == c1 {
		t.Errorf("Build() with extra file reused %q", c1)
	}
}

func TestBuildBadPath(t *testing.T) {
	if err := Available(); err != nil {
		testenv.Skipf(t, "cannot build images here: %v", err)
	}
	for _, p := range []string{"etc/x", "/etc/../x", "/"} {
		_, err := Build(Options{CacheDir: t.TempDir(), Files: []File{{Path: p}}})
		if err == nil || !strings.Contains(err.Error(), "absolute and clean") {
			t.Errorf("Build(%q) error = %v, want path error", p, err)
		}
	}
}

func TestLXCConf(t *testing.T) {
	got := LXCConf(Conf{Name: "app", VolumesDir: "/tmp/v", Env: []string{"A=1"}, Extra: []string{"lxc.tty.dir = lxc"}})
	for _, want := range []string{
		"lxc.rootfs.path = overlayfs:/tmp/v/app/root.squashfs:/tmp/v/app/lxc-overlay/upper\n",
		"lxc.init.cmd = /sbin/init\n",
		"lxc.environment = A=1\n",
		"lxc.tty.dir = lxc\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("LXCConf() lacks %q:\n%s", want, got)
		}
	}
}
