package updater

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
	"github.com/pantavisor/pantavisor-go/runtime/bootloader"
	"github.com/pantavisor/pantavisor-go/runtime/config"
)

// ubootABConfig sets the U-Boot A/B keys as a pantavisor.config would.
func ubootABConfig(t *testing.T) *config.Config {
	t.Helper()
	c := config.New(nil)
	for k, v := range map[string]string{
		"PV_BOOTLOADER_TYPE":                 "uboot-ab",
		"PV_BOOTLOADER_UBOOTAB_A_NAME":       "kernA",
		"PV_BOOTLOADER_UBOOTAB_B_NAME":       "kernB",
		"PV_BOOTLOADER_UBOOTAB_ENV_NAME":     "u-env",
		"PV_BOOTLOADER_UBOOTAB_ENV_BAK_NAME": "u-env2",
		"PV_BOOTLOADER_UBOOTAB_ENV_OFFSET":   "4096",
		"PV_BOOTLOADER_UBOOTAB_ENV_SIZE":     "8192",
	} {
		if err := c.Set(k, v, config.PVConf); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestBootloaderOptionsUbootAB(t *testing.T) {
	o := bootloaderOptions(ubootABConfig(t), "/storage", "pv_rev=3", nil)
	want := bootloader.UbootABOptions{AName: "kernA", BName: "kernB", EnvName: "u-env", EnvBakName: "u-env2", EnvOffset: 4096, EnvSize: 8192}
	if o.Type != "uboot-ab" || o.UbootAB != want {
		t.Errorf("bootloaderOptions = %q %+v, want uboot-ab %+v", o.Type, o.UbootAB, want)
	}
	// defaults: upstream's fitA/fitB and an env described by the MTD itself
	o = bootloaderOptions(config.New(nil), "/storage", "", nil)
	if o.UbootAB != (bootloader.UbootABOptions{AName: "fitA", BName: "fitB"}) {
		t.Errorf("default UbootAB = %+v, want fitA/fitB", o.UbootAB)
	}
}

// TestBootloaderOpenUbootAB opens the backend with the keys: the FIT
// partitions and the env (with its backup, offset and size) are the ones
// the keys name.
func TestBootloaderOpenUbootAB(t *testing.T) {
	if _, err := exec.LookPath("fw_printenv"); err != nil {
		testenv.Skipf(t, "fw_printenv not installed (Debian libubootenv-tool)")
	}
	dir := t.TempDir()
	var proc strings.Builder
	proc.WriteString("dev:    size   erasesize  name\n")
	for _, n := range []string{"kernA", "kernB", "u-env", "u-env2"} {
		p := filepath.Join(dir, n+".mtd")
		if err := os.WriteFile(p, make([]byte, 0x10000), 0o644); err != nil {
			t.Fatal(err)
		}
		proc.WriteString(p + ": 00010000 00010000 \"" + n + "\"\n")
	}
	o := bootloaderOptions(ubootABConfig(t), dir, "pv_rev=0", nil)
	o.ProcMTD = filepath.Join(dir, "mtd")
	o.UbootAB.FWEnvConfig = filepath.Join(dir, "fw_env.config")
	if err := os.WriteFile(o.ProcMTD, []byte(proc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bootloader.Open(o); err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := os.ReadFile(o.UbootAB.FWEnvConfig)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "u-env.mtd") + " 0x1000 0x2000 0x10000\n" + filepath.Join(dir, "u-env2.mtd") + " 0x1000 0x2000 0x10000\n"
	if string(got) != want {
		t.Errorf("fw_env.config = %q, want %q", got, want)
	}
	// a partition the keys name that the device lacks is a clear error
	o.UbootAB.BName = "nope"
	if _, err := bootloader.Open(o); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Open with a missing B partition = %v, want an error naming it", err)
	}
}
