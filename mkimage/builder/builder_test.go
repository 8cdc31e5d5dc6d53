package builder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/mkimage/sbom"
	"github.com/pantavisor/pantavisor-go/runtime/config"
)

func TestMatchPath(t *testing.T) {
	for _, tt := range []struct {
		rel  string
		pref []string
		want bool
	}{
		{"kernel/sound/x.ko", []string{"kernel/sound"}, true},
		{"kernel/sound", []string{"kernel/sound/"}, true},
		{"kernel/soundwire/x.ko", []string{"kernel/sound"}, false},
		{"kernel/fs/x.ko", nil, false},
		{"kernel/drivers/gpu/drm/drm.ko", []string{"kernel/drivers/gpu/drm/*.ko"}, true},
		{"kernel/drivers/gpu/drm/amd/amdgpu/amdgpu.ko", []string{"kernel/drivers/gpu/drm/*.ko"}, false},
		{"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko", []string{"kernel/drivers/net/ethernet/intel/e1000*"}, true},
		{"kernel/drivers/net/ethernet/intel/igb/igb.ko", []string{"kernel/drivers/net/ethernet/intel/e1000*"}, false},
		{"kernel/drivers/net", []string{"kernel/drivers/net/*"}, false},
	} {
		if got := matchPath(tt.rel, tt.pref); got != tt.want {
			t.Errorf("matchPath(%q, %v) = %v, want %v", tt.rel, tt.pref, got, tt.want)
		}
	}
}

// TestModuleSet: what include selects comes with its dependencies,
// wherever they are; what depends on an excluded module is left out.
func TestModuleSet(t *testing.T) {
	dep, err := initrd.ParseModulesDep(strings.NewReader(`kernel/drivers/gpu/drm/tiny/bochs.ko: kernel/drivers/gpu/drm/drm_vram_helper.ko kernel/drivers/gpu/drm/drm.ko
kernel/drivers/gpu/drm/drm_vram_helper.ko: kernel/drivers/gpu/drm/drm.ko
kernel/drivers/gpu/drm/drm.ko:
kernel/drivers/gpu/drm/tiny/cirrus.ko: kernel/drivers/media/rc/rc-core.ko kernel/drivers/gpu/drm/drm.ko
kernel/drivers/media/rc/rc-core.ko:
kernel/drivers/gpu/drm/amd/amdgpu/amdgpu.ko: kernel/drivers/gpu/drm/drm.ko
kernel/sound/snd.ko:
`))
	if err != nil {
		t.Fatal(err)
	}
	if set := moduleSet(dep, nil, nil); set != nil {
		t.Errorf("moduleSet(nil, nil) = %v, want everything (nil)", set)
	}
	for _, tt := range []struct {
		include, exclude, want []string
	}{
		{[]string{"kernel/drivers/gpu/drm/tiny"}, []string{"kernel/drivers/media"},
			[]string{"kernel/drivers/gpu/drm/drm.ko", "kernel/drivers/gpu/drm/drm_vram_helper.ko", "kernel/drivers/gpu/drm/tiny/bochs.ko"}},
		{nil, []string{"kernel/sound", "kernel/drivers/gpu/drm/*.ko"},
			[]string{"kernel/drivers/media/rc/rc-core.ko"}},
	} {
		var got []string
		for f := range moduleSet(dep, tt.include, tt.exclude) {
			got = append(got, f)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("moduleSet(%v, %v) = %v, want %v", tt.include, tt.exclude, got, tt.want)
		}
	}
}

func TestLinkTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "kernel/sound"), 0o755)
	os.MkdirAll(filepath.Join(src, "kernel/fs"), 0o755)
	os.WriteFile(filepath.Join(src, "kernel/sound/a.ko"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(src, "kernel/fs/b.ko"), []byte("b"), 0o644)
	os.Symlink("/usr/src/linux", filepath.Join(src, "build"))
	n, err := linkTree(src, dst, func(rel string) bool { return !matchPath(rel, []string{"kernel/sound"}) })
	if err != nil || n != 1 {
		t.Fatalf("linkTree() = %d, %v, want 1 file", n, err)
	}
	a, _ := os.Stat(filepath.Join(src, "kernel/fs/b.ko"))
	b, err := os.Stat(filepath.Join(dst, "kernel/fs/b.ko"))
	if err != nil || !os.SameFile(a, b) {
		t.Errorf("kernel/fs/b.ko not hard-linked: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "kernel/sound/a.ko")); err == nil {
		t.Errorf("excluded kernel/sound/a.ko was copied")
	}
}

func TestImageName(t *testing.T) {
	r := &recipe.Recipe{Name: "x64-uefi", ImageSizeMiB: 1024}
	if got, want := ImageName(r), "x64-uefi-pv-1024MiB.img"; got != want {
		t.Errorf("ImageName() = %q, want %q", got, want)
	}
}

func TestBuildBadInputs(t *testing.T) {
	if _, err := Build(context.Background(), Options{Repo: "../..", Target: "no-such-target"}); err == nil {
		t.Errorf("Build(missing target) = nil error")
	}
	if _, err := Build(context.Background(), Options{Repo: "../..", Target: "x64-uefi", Init: "systemd"}); err == nil || !strings.Contains(err.Error(), "systemd") {
		t.Errorf("Build(bad init) = %v", err)
	}
}

// TestBuildX64 runs the whole pipeline (Debian archive or a warm cache
// needed, ~2-5 min cold, ~20 s warm): PV_TEST_BUILD=1.
func TestBuildX64(t *testing.T) {
	if os.Getenv("PV_TEST_BUILD") != "1" {
		t.Skip("set PV_TEST_BUILD=1 to build the x64-uefi image")
	}
	out := t.TempDir()
	res, err := Build(context.Background(), Options{Repo: "../..", Target: "x64-uefi", Out: out, Init: InitSmoke, Epoch: 1700000000, Offline: os.Getenv("PV_OFFLINE") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(res.Image); err != nil || fi.Size() != 1024<<20 {
		t.Errorf("image %s: %v", res.Image, err)
	}
	if data, err := os.ReadFile(res.SBOM); err != nil {
		t.Errorf("sbom: %v", err)
	} else if doc, err := sbom.Validate(data); err != nil {
		t.Error(err)
	} else if err := sbom.Coverage(doc, res.Storage); err != nil {
		t.Error(err)
	}
	for _, p := range []string{"trails/0/.pvr/json", "trails/0/.pv/pv-kernel.img", "trails/0/.pv/pv-initrd.img", "trails/0/.pv/pv-initrd.img.0", "boot/grubenv"} {
		if _, err := os.Stat(filepath.Join(res.Storage, p)); err != nil {
			t.Errorf("storage lacks %s: %v", p, err)
		}
	}
}

// TestFailedBuildMarksOutputs: a build that fails leaves no output of an
// earlier build that looks current, and says so in FAILED; a later build
// that gets through removes FAILED.
func TestFailedBuildMarksOutputs(t *testing.T) {
	out := t.TempDir()
	old := []string{"x64-uefi-pv-1024MiB.img", ".x64-uefi-pv-1024MiB.img.stamp", "x64-uefi.pvr.tgz", "x64-uefi.spdx.json", "sbom.json"}
	for _, n := range old {
		if err := os.WriteFile(filepath.Join(out, n), []byte("last build"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// the first stage fails: the signing key does not exist
	_, err := Build(context.Background(), Options{Repo: "../..", Target: "x64-uefi", Out: out, Cache: t.TempDir(),
		SigKey: filepath.Join(out, "missing.key"), Offline: true, Epoch: 1700000000})
	if err == nil {
		t.Fatal("Build(missing signing key) = nil error")
	}
	for _, n := range old {
		if _, err := os.Stat(filepath.Join(out, n)); !os.IsNotExist(err) {
			t.Errorf("after a failed build, %s of the last build is still there (%v)", n, err)
		}
	}
	data, rerr := os.ReadFile(filepath.Join(out, FailedName))
	if rerr != nil || !strings.Contains(string(data), "missing.key") {
		t.Errorf("%s = %q, %v; want the error", FailedName, data, rerr)
	}
	// a build that gets through (here up to its first stage) keeps the marker
	// only while it has not completed: -until leaves FAILED in place
	if _, err := Build(context.Background(), Options{Repo: "../..", Target: "x64-uefi", Out: out, Cache: t.TempDir(),
		Offline: true, Epoch: 1700000000, Until: "signing keys"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, FailedName)); err != nil {
		t.Errorf("a partial build (-until) removed %s: %v", FailedName, err)
	}
}

// TestFactoryConfig: PV_FACTORY_AUTOTOK lands in pantahub.config as the
// runtime reads it (runtime/config), replacing any token the recipe's
// file has; tokens that cannot be one line are refused.
func TestFactoryConfig(t *testing.T) {
	base := []byte("creds.host=api.pantahub.com\nfactory.autotok=old\nPH_FACTORY_AUTOTOK=older\nupdater.interval=60")
	data, err := factoryConfig(base, "tok-123_abc")
	if err != nil {
		t.Fatal(err)
	}
	pairs, errs := config.ParseFile(bytes.NewReader(data))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := map[string][]string{}
	for _, p := range pairs {
		got[p.Key] = append(got[p.Key], p.Value)
	}
	if v := got["factory.autotok"]; len(v) != 1 || v[0] != "tok-123_abc" || got["PH_FACTORY_AUTOTOK"] != nil ||
		got["updater.interval"][0] != "60" || got["creds.host"][0] != "api.pantahub.com" {
		t.Errorf("factoryConfig() = %q", data)
	}
	for _, bad := range []string{"a b", "a\nb=c", "tök", strings.Repeat("x", 2000)} {
		if _, err := factoryConfig(nil, bad); err == nil {
			t.Errorf("factoryConfig(%q) = nil error", bad)
		}
	}
	root := t.TempDir()
	b := &run{o: Options{Repo: "../..", AutoTok: "tok-1"}, r: &recipe.Recipe{Config: recipe.Config{Pantahub: "vendor-skel/x64-uefi/pantahub.config"}}}
	if err := b.writePantahubConfig(root); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(root, "config", "pantahub.config")); err != nil || !bytes.HasSuffix(data, []byte("\nfactory.autotok=tok-1\n")) || !bytes.Contains(data, []byte("creds.host=")) {
		t.Errorf("storage pantahub.config = %q, %v", data, err)
	}
	if _, err := Build(context.Background(), Options{Repo: "../..", Target: "x64-appengine", Out: t.TempDir(), AutoTok: "tok"}); err == nil || !strings.Contains(err.Error(), "App Engine") {
		t.Errorf("Build(appengine, PV_FACTORY_AUTOTOK) = %v, want the App Engine refusal", err)
	}
}

func TestHeaderNames(t *testing.T) {
	for kver, want := range map[string][3]string{
		"6.1.0-50-arm64":      {"linux-headers-6.1.0-50-arm64", "linux-headers-6.1.0-50-common", "linux-kbuild-6.1"},
		"6.1.0-50-armmp-lpae": {"linux-headers-6.1.0-50-armmp-lpae", "linux-headers-6.1.0-50-common", "linux-kbuild-6.1"},
	} {
		f, c, k, err := headerNames(kver)
		if err != nil || [3]string{f, c, k} != want {
			t.Errorf("headerNames(%q) = %q %q %q %v, want %q", kver, f, c, k, err, want)
		}
	}
	for _, bad := range []string{"6.1", "6-1-x", ""} {
		if _, _, _, err := headerNames(bad); err == nil {
			t.Errorf("headerNames(%q): no error", bad)
		}
	}
}
