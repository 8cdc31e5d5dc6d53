package pantavisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/boottime"
	"github.com/pantavisor/pantavisor-go/runtime/kmod"
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
	files, sys := bspFixtures(t)
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
			var log syncBuf
			root := t.TempDir()
			m := bspMount{Log: slog.New(slog.NewTextHandler(&log, nil)), Root: root, Sys: sys, Release: rel,
				Cmdline: "console=ttyS0", File: func(name string) string { return files[name] }}
			d := &Daemon{log: m.Log, boot: boottime.Start()}
			set := d.mountBSPWith(m, c.bsp, nil)
			if cp := d.coldplug; cp != nil {
				<-cp.Done()
			}
			defer func() {
				if err := set.Unmount(); err != nil {
					t.Errorf("Unmount() = %v", err)
				}
			}()
			if got := len(set.Mounts()); got != c.mounts {
				t.Errorf("mountBSPWith() mounted %v, want %d mounts", set.Mounts(), c.mounts)
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

// bspFixtures are TestBSPMount's images (bsp file name → path) and sysfs
// with one e1000e device.
func bspFixtures(t *testing.T) (files map[string]string, sys string) {
	t.Helper()
	modules := squashfsOf(t, map[string]string{
		"modules.dep":   "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:\n",
		"modules.alias": "alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e\n",
		// Not a real module: the kernel refuses it, harmlessly.
		"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko": "not an ELF module\n",
	})
	firmware := squashfsOf(t, map[string]string{"intel/fw.bin": "firmware\n"})
	garbage := filepath.Join(t.TempDir(), "bad.squashfs")
	os.WriteFile(garbage, []byte("not a squashfs at all"), 0o644)
	files = map[string]string{"modules.squashfs": modules, "modules_other.squashfs": garbage,
		"firmware.squashfs": firmware, "bad.squashfs": garbage}

	sys = t.TempDir()
	dev := filepath.Join(sys, "bus", "pci", "devices", "0000:00:03.0")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "modalias"), []byte("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00\n"), 0o444)

	return files, sys
}

// TestBSPMountLate: with a late checksum the firmware is mounted at once
// and the modules image only once its checksum passed; until then the
// modprobe applet's pending mark is on the modules directory and
// WaitDrivers waits. A failed checksum mounts nothing and lifts the mark.
func TestBSPMountLate(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Skipf(t, "needs root (loop mounts)")
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "no mksquashfs (Debian squashfs-tools)")
	}
	const rel = "6.1.0-50-amd64"
	files, sys := bspFixtures(t)
	bsp := &state.BSP{Modules: "modules.squashfs", Firmware: "firmware.squashfs"}
	for _, bad := range []bool{false, true} {
		t.Run(map[bool]string{false: "passes", true: "fails"}[bad], func(t *testing.T) {
			var log syncBuf
			root := t.TempDir()
			m := bspMount{Log: newTextLog(&log), Root: root, Sys: sys, Release: rel,
				Cmdline: "console=ttyS0", File: func(name string) string { return files[name] }}
			d := &Daemon{log: m.Log, boot: boottime.Start()}
			late := newLateCheck([]checkedObject{{name: "bsp/modules.squashfs"}}, nil)
			set := d.mountBSPWith(m, bsp, late)
			defer func() {
				if err := set.Unmount(); err != nil {
					t.Errorf("Unmount() = %v", err)
				}
			}()
			mark := filepath.Join(root, "lib/modules", rel, kmod.PendingFile)
			if n := len(set.Mounts()); n != 1 {
				t.Errorf("before the modules' checksum: %v mounted, want the firmware only", set.Mounts())
			}
			if _, err := os.Stat(mark); err != nil {
				t.Errorf("pending mark before the modules' checksum: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			if err := d.WaitDrivers(ctx, "e1000e"); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("WaitDrivers before the modules' checksum = %v, want it to wait", err)
			}
			cancel()
			if bad {
				late.modsErr = errors.New("rotten")
			}
			close(late.modsDone)
			<-d.modulesPending()
			want := 2
			if bad {
				want = 1
			}
			if n := len(set.Mounts()); n != want {
				t.Errorf("after the modules' checksum: %v mounted, want %d mounts", set.Mounts(), want)
			}
			if _, err := os.Stat(mark); err == nil {
				t.Errorf("pending mark still visible after the modules' checksum")
			}
			if err := d.WaitDrivers(context.Background(), "e1000e"); err != nil {
				t.Errorf("WaitDrivers after = %v", err)
			}
			if cp := d.coldplug; (cp != nil) == bad {
				t.Errorf("coldplug = %v, want one only when the modules mounted", cp)
			} else if cp != nil {
				<-cp.Done()
			}
			if bad && !strings.Contains(log.String(), "KERNEL MODULES NOT MOUNTED: bad checksum") {
				t.Errorf("log lacks the refusal:\n%s", log.String())
			}
		})
	}
}
