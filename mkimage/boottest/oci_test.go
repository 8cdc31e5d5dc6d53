package boottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/builder"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// TestOCIContainers builds a variant of PV_TEST_IMAGE's target whose
// recipe adds two containers made from container images the test writes
// (ocitest.HostDebian: busybox-static and a dynamically linked printenv,
// layers with a whiteout, an opaque dir, a hard link and a symlinked
// lib dir): "oci-layout" from an OCI image layout (oci:<dir>:<tag>) and
// "oci-archive" from a docker save tarball (docker-archive:<file>). The
// build reuses the image's artifact cache (PV_CACHE), so only trails/0
// and the disk image are new. The variant boots to READY with both
// containers STARTED, and the debug shell prints each one's console log:
// its entrypoint ran with the image's working dir and env over the
// flattened layers. An image container binds the device's resolv.conf
// (pvr's template default; the initrd ships it), and so does pv-mgmt:
// they read what the debug shell appends to it.
func TestOCIContainers(t *testing.T) {
	r := imageRecipe(t)
	if marker() == "PV-SMOKE-OK" {
		t.Skip("the containers need the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	if r.Arch != "amd64" {
		t.Skipf("the test image is made of the host's amd64 binaries; %s is %s", r.Name, r.Arch)
	}
	if a, err := arch.Lookup(r.Arch); err != nil {
		t.Fatal(err)
	} else if _, err := exec.LookPath(a.QEMU); err != nil {
		testenv.Skipf(t, "no %s (Debian qemu-system-*)", a.QEMU)
	}
	tmp := t.TempDir()
	layoutSrc, archiveSrc := ociImages(t, tmp)
	v := *r
	v.Addons = append([]string(nil), r.Addons...)
	v.Containers = append(append([]recipe.Container(nil), r.Containers...),
		recipe.Container{Name: "oci-layout", Image: layoutSrc},
		recipe.Container{Name: "oci-archive", Image: archiveSrc})

	t0 := time.Now()
	res, err := builder.Build(context.Background(), builder.Options{Repo: "../..", Recipe: &v,
		Out: filepath.Join(tmp, "out"), Cache: os.Getenv("PV_CACHE"), Offline: true, Debug: "yes",
		Epoch: 1700000000, Init: builder.InitPantavisor})
	if err != nil {
		t.Fatalf("build the variant of %s: %v", r.Name, err)
	}
	t.Logf("built the variant in %s", time.Since(t0).Round(100*time.Millisecond))
	for _, n := range []string{"oci-layout", "oci-archive"} {
		fi, err := os.Stat(filepath.Join(res.Storage, "trails/0", n, "root.squashfs"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s/root.squashfs: %d KiB", n, fi.Size()>>10)
	}
	if base, err := os.Stat(os.Getenv("PV_TEST_IMAGE")); err == nil {
		if fi, err := os.Stat(res.Image); err == nil {
			t.Logf("image: %d MiB allocated, PV_TEST_IMAGE %d MiB", allocated(fi)>>20, allocated(base)>>20)
		}
	}

	timeout := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("PV_TEST_BOOT_TIMEOUT")); err == nil {
		timeout = d
	}
	// The console logs are read once the entrypoints printed their last
	// line; the typed command holds none of the expected strings
	// (oci-rea[d]y, $((6*7))).
	show := func(n string) string {
		f := "/storage/logs/0/" + n + "/lxc/console.log"
		return fmt.Sprintf("until grep -q oci-rea[d]y %s 2>/dev/null; do sleep 1; done; sed 's/^/%s: /' %s; ", f, n, f)
	}
	started := []string{"platform=oci-layout status=STARTED", "platform=oci-archive status=STARTED"}
	var want []string
	for _, n := range []string{"oci-layout", "oci-archive"} {
		for _, l := range []string{"cwd=/srv/work", "greeting=hello from the image", "dynamic-printenv-ok", "new", "whiteout-ok", "hardlink-ok", "oci-ready"} {
			want = append(want, n+": "+l)
		}
	}
	want = append(want, "platform=oci-archive tag=archive-v1", "oci-resolv=# pv-central-42", "mgmt-resolv=# pv-central-42")
	opt := Options{Image: res.Image, Firmware: BIOS, Timeout: timeout,
		Marker: "oci-logs-42",
		Expect: append(append([]string{readyLine("0")}, started...), want...),
		Input: []Input{
			{After: debugshell.Prompt, Keys: "d"},
			{After: readyLine("0"), Keys: show("oci-layout") + show("oci-archive") +
				"echo platform=oci-archive tag=$(pventer -c oci-archive /bin/cat /etc/tag)\n" +
				// the image containers bind the device's resolv.conf
				// (pvr's default), which pv-network writes the DNS
				// servers of its lease into (QEMU's restricted user
				// network offers none: tests/containers/14 checks that)
				"echo '# pv-central-'$((6*7)) >> /etc/resolv.conf; " +
				"echo oci-resolv=$(pventer -c oci-layout /bin/cat /etc/resolv.conf); " +
				// and so does the default mgmt container
				"echo mgmt-resolv=$(pventer -c pv-mgmt /bin/cat /etc/resolv.conf); echo oci-logs-$((6*7))\n"},
		}}
	if f := consoleFile(t); f != nil {
		opt.Console = f
	}
	res2, err := Boot(context.Background(), opt)
	if err != nil {
		t.Fatalf("%v\nconsole tail:\n%s", err, tail(res2.Console, 40))
	}
	for _, s := range append(append([]string{readyLine("0")}, started...), "oci-layout: oci-ready", "oci-archive: oci-ready") {
		t.Logf("%q after %s", s, res2.Seen[s].Round(100*time.Millisecond))
	}
	// The marker line is the echo's output, not its typed command.
	if strings.Contains(res2.MarkerLine, "$((") {
		t.Errorf("marker matched the typed command: %q", res2.MarkerLine)
	}
}

// ociImages writes the test's container images under dir: HostDebian as
// an OCI layout tagged v1 and, with a third layer adding /etc/tag, as a
// docker save tarball. It returns their recipe sources.
func ociImages(t *testing.T, dir string) (layoutSrc, archiveSrc string) {
	t.Helper()
	img, err := ocitest.HostDebian(ocitest.HostDebianConfig())
	if errors.Is(err, ocitest.ErrNoHostBinaries) {
		testenv.Skipf(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := ocitest.WriteLayout(filepath.Join(dir, "layout"), "v1", img); err != nil {
		t.Fatal(err)
	}
	l, err := ocitest.Layer(ocitest.File("etc/tag", []byte("archive-v1\n"), 0o644))
	if err != nil {
		t.Fatal(err)
	}
	var arch v1.Image
	if arch, err = mutate.AppendLayers(img, l); err != nil {
		t.Fatal(err)
	}
	if err := ocitest.WriteArchive(filepath.Join(dir, "app.tar"), "example.com/oci-archive:v1", arch); err != nil {
		t.Fatal(err)
	}
	return "oci:" + filepath.Join(dir, "layout") + ":v1", "docker-archive:" + filepath.Join(dir, "app.tar")
}

// allocated is the bytes a sparse file takes on disk.
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
