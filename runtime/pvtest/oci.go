package pvtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/mkimage/app"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
)

// KindOCI is a container made the way `pvr app add` makes one: an OCI
// image layout of the host's Debian binaries (busybox-static, coreutils'
// printenv and its libraries; layers with whiteouts, an opaque directory,
// a hard link and a symbolic-linked lib directory) converted by
// mkimage/app. Its entrypoint prints the image's env and working dir
// (ocitest.HostDebianScript), then "oci-ready".
const KindOCI = "oci"

func init() { kinds[KindOCI] = true }

// buildOCI converts the image and exports it as a pvr export tarball,
// cached by the image's digest.
func (f *Fixtures) buildOCI(spec, name string) (string, error) {
	img, err := ocitest.HostDebian(ocitest.HostDebianConfig())
	if err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	k := sha256.Sum256([]byte(name + "\x00" + d.String()))
	out := filepath.Join(f.CacheDir, "fixtures", name+"-oci-"+hex.EncodeToString(k[:8])+".tgz")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	work, err := os.MkdirTemp(f.CacheDir, "oci-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := ocitest.WriteLayout(filepath.Join(work, "layout"), "v1", img); err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	co := filepath.Join(work, "checkout")
	if err := os.Mkdir(co, 0o755); err != nil {
		return "", err
	}
	if _, err := app.Add(context.Background(), co, name, "oci:"+filepath.Join(work, "layout")+":v1", map[string]any{"PV_GROUP": "app"},
		app.Options{Platform: "linux/amd64", Comp: "gzip"}); err != nil {
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tf, err := os.CreateTemp(filepath.Dir(out), ".oci-*.tgz")
	if err != nil {
		return "", err
	}
	defer os.Remove(tf.Name())
	if err := app.Export(co, []string{name}, tf); err != nil {
		tf.Close()
		return "", fmt.Errorf("fixture %s: %w", spec, err)
	}
	if err := tf.Close(); err != nil {
		return "", err
	}
	return out, os.Rename(tf.Name(), out)
}
