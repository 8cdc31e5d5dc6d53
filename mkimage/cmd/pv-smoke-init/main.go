// Command pv-smoke-init is a stand-in PID 1 for image boot tests while the
// Pantavisor daemon is not in the initrd: it does what embedded Pantavisor
// does first (runtime/embedded: mounts, modules, storage by label), checks
// the factory revision the bootloader picked, prints a marker line on the
// console and powers the machine off.
//
// Marker: "PV-SMOKE-OK rev=<rev> try=<pv_try> trying=<grubenv pv_trying> storage=<dev> ..."
// or "PV-SMOKE-FAIL <error>".
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/embedded"
	"github.com/pantavisor/pantavisor-go/runtime/kmod"
)

func main() {
	err := run(context.Background(), os.Args, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stdout, "PV-SMOKE-FAIL %v\n", err)
	}
	if os.Getpid() == 1 {
		time.Sleep(200 * time.Millisecond)
		embedded.Reboot(embedded.PowerOff)
		select {}
	}
	if err != nil {
		os.Exit(1)
	}
}

// cmdline returns the pv_*/PV_* keys of the kernel command line.
func cmdline(raw string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(raw) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	start := time.Now()
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := embedded.MountAll(embedded.BaseMounts); err != nil {
		return err
	}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	cl := cmdline(string(raw))
	kver, err := embedded.KernelRelease()
	if err != nil {
		return err
	}
	names, err := kmod.ReadModuleLists("/etc/modules-load.d")
	if err != nil {
		return err
	}
	n := 0
	if idx, err := kmod.Open(filepath.Join("/lib/modules", kver)); err != nil {
		log.Warn("modules", "err", err)
	} else {
		loaded, err := kmod.NewLoader(idx, log).LoadAll(names)
		if err != nil {
			log.Warn("modules", "err", err)
		}
		n = len(loaded)
	}
	spec := "LABEL=root"
	for _, k := range []string{"PV_STORAGE_DEVICE", "pv_storage.device"} {
		if v, ok := cl[k]; ok && v != "" {
			spec = v // Cut splits at the first '=': "LABEL=root" stays whole
		}
	}
	dev, err := embedded.WaitDevice(ctx, spec, 10*time.Second)
	if err != nil {
		return err
	}
	if err := (embedded.Mount{Source: dev, Target: "/storage", FSType: "ext4"}).Do(); err != nil {
		return err
	}
	rev := cl["pv_rev"]
	if rev == "" {
		rev = "0"
	}
	if _, err := os.Stat(filepath.Join("/storage/trails", rev, ".pvr/json")); err != nil {
		return fmt.Errorf("revision %s: %w", rev, err)
	}
	// What GRUB's save_env left in the environment block (pv_trying).
	trying := "-"
	if env, err := os.ReadFile("/storage/boot/grubenv"); err == nil {
		for _, l := range strings.Split(string(env), "\n") {
			if v, ok := strings.CutPrefix(l, "pv_trying="); ok {
				trying = v
			}
		}
	}
	fmt.Fprintf(stdout, "PV-SMOKE-OK rev=%s try=%s trying=%s storage=%s modules=%d kernel=%s init=%s\n",
		rev, cl["pv_try"], trying, dev, n, kver, time.Since(start).Round(time.Millisecond))
	return nil
}
