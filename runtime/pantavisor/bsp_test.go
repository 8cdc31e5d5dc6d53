package pantavisor

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// squashfsOf makes a squashfs image of files (path → content).
func squashfsOf(t *testing.T, files map[string]string) string {
	t.Helper()
	src := t.TempDir()
	for p, data := range files {
		full := filepath.Join(src, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "v.squashfs")
	if out, err := exec.Command("mksquashfs", src, img, "-noappend", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	return img
}

func TestBSPMount(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Skipf(t, "needs root (loop mounts)")
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs (Debian squashfs-tools)")
	}
	const rel = "6.1.0-50-amd64"
	modules := squashfsOf(t, map[string]string{
		"modules.dep":   "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:\n",
		"modules.alias": "alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e\n",
		// Not a real module: the kernel refuses it, harmlessly.
		"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko": "not an ELF module\n",
	})
	firmware := squashfsOf(t, map[string]string{"intel/fw.bin": "firmware\n"})
	garbage := filepath.Join(t.TempDir(), "bad.squashfs")
	os.WriteFile(garbage, []byte("not a squashfs at all"), 0o644)
	files := map[string]string{"modules.squashfs": modules, "modules_other.squashfs": garbage,
		"firmware.squashfs": firmware, "bad.squashfs": garbage}

	sys := t.TempDir()
	dev := filepath.Join(sys, "bus", "pci", "devices", "0000:00:03.0")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "modalias"), []byte("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00\n"), 0o444)

	for _, c := range []struct {
		name   string
		bsp    *state.BSP
		mounts int
		logs   []string
	}{
		{"modules and firmware", &state.BSP{Modules: "modules.squashfs", Firmware: "firmware.squashfs",
			ModulesByRelease: map[string]string{"5.10.0": "modules_other.squashfs"}}, 2,
			[]string{"bsp: firmware mounted", "bsp: modules mounted", "kmod: load module", "e1000e.ko", "kmod: coldplug loaded 0 modules"}},
		{"modules_<release> wins", &state.BSP{Modules: "modules.squashfs", ModulesByRelease: map[string]string{rel: "bad.squashfs"}}, 0,
			[]string{"no firmware entry", "KERNEL MODULES NOT MOUNTED", "not a squashfs image"}},
		{"bad firmware, modules still mounted", &state.BSP{Modules: "modules.squashfs", Firmware: "bad.squashfs"}, 1,
			[]string{"FIRMWARE NOT MOUNTED", "bsp: modules mounted", "coldplug loaded"}},
		{"no modules entry", &state.BSP{}, 0, []string{"no modules entry"}},
		{"no bsp", nil, 0, []string{"no bsp/run.json"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			root := t.TempDir()
			m := bspMount{Log: slog.New(slog.NewTextHandler(&log, nil)), Root: root, Sys: sys, Release: rel,
				Cmdline: "console=ttyS0", File: func(name string) string { return files[name] }}
			set, cp := m.Do(c.bsp)
			if cp != nil {
				<-cp.Done()
			}
			defer func() {
				if err := set.Unmount(); err != nil {
					t.Errorf("Unmount() = %v", err)
				}
			}()
			if got := len(set.Mounts()); got != c.mounts {
				t.Errorf("Do() mounted %v, want %d mounts", set.Mounts(), c.mounts)
			}
			for _, want := range c.logs {
				if !strings.Contains(log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, log.String())
				}
			}
			if c.mounts == 2 {
				if b, err := os.ReadFile(filepath.Join(root, "lib/firmware/intel/fw.bin")); string(b) != "firmware\n" {
					t.Errorf("firmware through the mount = %q, %v", b, err)
				}
				if _, err := os.Stat(filepath.Join(root, "lib/modules", rel, "modules.alias")); err != nil {
					t.Errorf("modules.alias through the mount: %v", err)
				}
			}
		})
	}
}
