package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pantavisor/pantavisor-go/mkimage/app"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
	"github.com/pantavisor/pantavisor-go/mkimage/pvrtemplate"
)

// TestNamedUser: the image's User "svc:staff" resolves in the flattened
// root's /etc/passwd (an absolute symbolic link, resolved inside the
// root) and /etc/group, at add and again at install (read back from the
// squashfs); a user the image lacks fails add and writes nothing.
func TestNamedUser(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	l, err := ocitest.Layer(ocitest.Dir("etc"), ocitest.Dir("usr"), ocitest.Dir("usr/lib"),
		ocitest.File("usr/lib/passwd", []byte("root:x:0:0::/root:/bin/sh\nsvc:x:1001:1001::/srv:/bin/sh\n"), 0o644),
		ocitest.Symlink("etc/passwd", "/usr/lib/passwd"),
		ocitest.File("etc/group", []byte("root:x:0:\nsvc:x:1001:\nstaff:x:50:svc\n"), 0o644))
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	for tag, user := range map[string]string{"good": "svc:staff", "bad": "ghost"} {
		img, err := ocitest.Image("linux/amd64", v1.Config{Cmd: []string{"/bin/true"}, User: user}, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := ocitest.WriteLayout(filepath.Join(repo, tag), tag, img); err != nil {
			t.Fatal(err)
		}
	}
	co := t.TempDir()
	o := app.Options{Platform: "linux/amd64", Comp: "gzip"}
	src, err := app.Add(ctx, co, "svc", "oci:"+repo+"/good:good", nil, o)
	if err != nil {
		t.Fatal(err)
	}
	conf := func() string {
		b, err := os.ReadFile(filepath.Join(co, "svc", app.ConfFile))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, l := range []string{"lxc.init.uid = 1001\n", "lxc.init.gid = 50\n"} {
		if !strings.Contains(conf(), l) {
			t.Errorf("after add, lxc.container.conf lacks %q:\n%s", l, conf())
		}
	}
	// install re-renders without converting: the ids come from the squashfs.
	src.DockerConfig.User = "svc"
	b, _ := json.Marshal(src)
	os.WriteFile(filepath.Join(co, "svc", app.SrcFile), b, 0o644)
	if err := app.Install(ctx, co, "svc", o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf(), "lxc.init.gid = 1001\n") {
		t.Errorf("after install with User svc, want the passwd group 1001:\n%s", conf())
	}

	_, err = app.Add(ctx, co, "bad", "oci:"+repo+"/bad:bad", nil, o)
	if !errors.Is(err, pvrtemplate.ErrUser) || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("Add with a missing user = %v, want ErrUser naming it", err)
	}
	if _, err := os.Stat(filepath.Join(co, "bad")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed add left bad/: %v", err)
	}
	if ents, _ := os.ReadDir(co); len(ents) != 1 {
		t.Errorf("checkout holds %d entries after the failed add, want 1 (svc)", len(ents))
	}
}
