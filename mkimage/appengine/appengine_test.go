package appengine

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/config"
)

// TestInstall runs the real install script on a package tree (with stub
// binaries) and checks the prefix it produces.
func TestInstall(t *testing.T) {
	pkg := t.TempDir()
	if err := writeTree(pkg); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(pkg, "bin"), 0o755)
	for _, b := range Binaries {
		os.WriteFile(filepath.Join(pkg, "bin", b.Name), []byte("#!/bin/sh\necho "+b.Name+" \"$@\"\n"), 0o755)
	}
	prefix := filepath.Join(t.TempDir(), "opt", "pantavisor")
	out, err := exec.Command("/bin/sh", filepath.Join(pkg, "install"), prefix).CombinedOutput()
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), prefix+"/pantavisor -i") {
		t.Errorf("install output lacks the run hint:\n%s", out)
	}
	got, err := exec.Command(filepath.Join(prefix, "pantavisor"), "-i").CombinedOutput()
	if err != nil {
		t.Fatalf("launcher: %v\n%s", err, got)
	}
	if want := "pv-appengine -prefix " + prefix + " -i\n"; string(got) != want {
		t.Errorf("launcher ran %q, want %q", got, want)
	}
	conf := filepath.Join(prefix, "etc", "pantavisor-appengine.config")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "@") {
		t.Errorf("config keeps a placeholder:\n%s", b)
	}
	c, err := config.Load(config.Options{ConfigFile: conf})
	if err != nil {
		t.Fatalf("config.Load() error = %v", err)
	}
	for key, want := range map[config.Key]string{
		config.StorageMntPoint:     prefix + "/var/pantavisor/storage",
		config.CacheUsrMetaDir:     prefix + "/var/pantavisor/storage/cache/usrmeta",
		config.SystemInitMode:      "appengine",
		config.UpdaterCommitDelay:  "5",
		config.UpdaterGoalsTimeout: "10",
		config.ControlRemote:       "0",
		config.SecurebootMode:      "disabled",
		config.WDTMode:             "disabled",
	} {
		if got := c.Get(key); got != want {
			t.Errorf("installed config %s = %q, want %q", key, got, want)
		}
	}
	for _, p := range []string{"bin/pantavisor", "lib/pantavisor/skel", "lib/pantavisor/pvtx.d/00-empty.json", "etc/pantavisor/pvs/trust", "var/pantavisor/storage"} {
		if _, err := os.Stat(filepath.Join(prefix, p)); err != nil {
			t.Errorf("installed prefix lacks %s: %v", p, err)
		}
	}
	if out, err := exec.Command("/bin/sh", filepath.Join(pkg, "install")).CombinedOutput(); err == nil {
		t.Errorf("install without a prefix succeeded: %s", out)
	}
}

func TestAssembleBadArch(t *testing.T) {
	err := Assemble(context.Background(), Options{Out: t.TempDir() + "/x", Arch: "mips"})
	if !errors.Is(err, ErrBadArch) || !strings.Contains(err.Error(), "mips") {
		t.Errorf("Assemble(Arch=mips) error = %v, want ErrBadArch", err)
	}
}

// TestAssemble builds the real binaries. It costs ~20 s warm and minutes
// cold (-trimpath builds share no cache with go test), and every
// "./test.docker.sh run" assembles the same package before the suites, so
// it only runs with PVTEST_ASSEMBLE=1.
func TestAssemble(t *testing.T) {
	if os.Getenv("PVTEST_ASSEMBLE") != "1" {
		t.Skip("set PVTEST_ASSEMBLE=1 (the App Engine suites assemble the package anyway)")
	}
	out := filepath.Join(t.TempDir(), "x64-appengine")
	if err := Assemble(context.Background(), Options{Repo: "../..", Out: out}); err != nil {
		t.Fatalf("Assemble() error = %v", err)
	}
	for _, b := range Binaries {
		st, err := os.Stat(filepath.Join(out, "bin", b.Name))
		if err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("bin/%s = %v, %v: want an executable", b.Name, st, err)
		}
	}
	if out, err := exec.Command(filepath.Join(out, "bin", "pvcontrol"), "help").CombinedOutput(); err != nil || !strings.Contains(string(out), "usage") {
		t.Errorf("pvcontrol help = %v: %s", err, out)
	}
}
