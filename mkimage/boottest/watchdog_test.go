package boottest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/disk"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/debugshell"
)

// TestWatchdog boots the x64-uefi image twice with two watchdogs, QEMU's
// i6300esb and q35's iTCO, and PV_WDT_MODE=always, PV_WDT_TIMEOUT=10 on
// the kernel command line (GRUB's grub.cfg on the ESP is edited): a
// healthy Pantavisor keeps the machine up for five timeouts with both
// watchdogs active; one stopped
// from the debug shell (testdata/hang: ptrace stops PID 1 with SIGSTOP)
// makes the machine reset (QEMU runs with -no-reboot, so it exits) within
// the timeout.
func TestWatchdog(t *testing.T) {
	img, _ := image(t)
	if os.Getenv("PV_TEST_MARKER") == "" {
		t.Skip("the watchdog needs the daemon as /init: set PV_TEST_MARKER (e.g. 'rev=0 status=READY')")
	}
	if _, err := exec.LookPath("mcopy"); err != nil {
		t.Fatal("mcopy not installed (Debian mtools)")
	}
	const timeout = 10 * time.Second
	wdtArgs(t, img, "pv_wdt.mode=always pv_wdt.timeout="+strconv.Itoa(int(timeout/time.Second)))
	hang := hangDisk(t)
	const mgmt = "platform=pv-mgmt status=STARTED"
	boot := func(t *testing.T, img string, cmd, marker string, hold time.Duration) Result {
		res, err := Boot(context.Background(), Options{Image: img, Firmware: BIOS, Timeout: 12 * time.Minute,
			// q35's own iTCO watchdog is a second one: QEMU lets it
			// reset the machine (and its driver probe) only without
			// noreboot
			Disks: []string{hang}, Devices: []string{"i6300esb"}, Globals: []string{"ICH9-LPC.noreboot=false"},
			Marker: marker, Expect: []string{mgmt}, Hold: hold,
			Input: []Input{{After: debugshell.Prompt, Keys: "d"}, {After: mgmt, Keys: cmd}}})
		if err != nil {
			t.Fatalf("%v\nconsole tail:\n%s", err, tail(res.Console, 40))
		}
		return res
	}
	t.Run("healthy", func(t *testing.T) {
		copyImg := filepath.Join(t.TempDir(), "img")
		if out, err := exec.Command("cp", "--sparse=always", img, copyImg).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
		// Pantavisor pets every watchdog (q35's iTCO beside the
		// i6300esb, their drivers loaded by the background coldplug in
		// either order): both must be armed with the timeout, and
		// neither may reset a healthy machine
		res := boot(t, copyImg, wdtShow, "wdt=[active/10 active/10 ]", 5*timeout)
		if res.Exited {
			t.Fatalf("a healthy Pantavisor: the machine reset %s after the watchdog was seen active\nconsole tail:\n%s",
				(res.Ended - res.Elapsed).Round(time.Second), tail(res.Console, 20))
		}
		t.Logf("healthy: up %s after the watchdog was seen active (%s timeout)", (res.Ended - res.Elapsed).Round(time.Second), timeout)
	})
	t.Run("hung", func(t *testing.T) {
		// stopped once both watchdogs are armed: their drivers are
		// loaded by the background coldplug, which may end after
		// pv-mgmt started
		res := boot(t, img, strings.TrimSuffix(wdtShow, "\n")+"; cat /dev/vdb > /tmp/hang && chmod +x /tmp/hang && /tmp/hang &\n", "hang: pid 1 stopped, all", 3*timeout)
		if !res.Exited {
			t.Fatalf("Pantavisor stopped: the machine still ran %s later\nconsole tail:\n%s", 3*timeout, tail(res.Console, 20))
		}
		t.Logf("hung: the machine reset %s after pid 1 stopped (%s timeout)", (res.Ended - res.Elapsed).Round(100*time.Millisecond), timeout)
	})
}

// wdtShow prints the state/timeout of every watchdog once both are
// active (30 s at most: the iTCO's driver may come later).
const wdtShow = `n=0; while :; do s=; for w in /sys/class/watchdog/watchdog*; do s="$s$(cat $w/state)/$(cat $w/timeout) "; done; ` +
	`[ "$s" = "active/10 active/10 " ] || [ $n -ge 30 ] && break; n=$((n+1)); sleep 1; done; echo "wdt=[$s]"` + "\n"

// wdtArgs appends args to the kernel command lines of the image's
// grub.cfg on its ESP.
func wdtArgs(t *testing.T, img, args string) {
	t.Helper()
	r := imageRecipe(t)
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	r.ImageSizeMiB = int(fi.Size() >> 20)
	l, err := disk.Plan(r)
	if err != nil {
		t.Fatal(err)
	}
	fat := img + "@@" + strconv.FormatInt(l.Part(recipe.RoleESP).Start, 10)
	mtools := func(args ...string) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		return cmd
	}
	cfg, err := mtools("mtype", "-i", fat, "::/EFI/BOOT/grub.cfg").Output()
	if err != nil {
		t.Fatalf("mtype grub.cfg: %v", err)
	}
	var out []string
	n := 0
	for _, line := range strings.Split(string(cfg), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "linux ") {
			line += " " + args
			n++
		}
		out = append(out, line)
	}
	if n == 0 {
		t.Fatalf("no linux line in grub.cfg:\n%s", cfg)
	}
	local := filepath.Join(t.TempDir(), "grub.cfg")
	if err := os.WriteFile(local, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := mtools("mcopy", "-o", "-i", fat, local, "::/EFI/BOOT/grub.cfg").CombinedOutput(); err != nil {
		t.Fatalf("mcopy grub.cfg: %v: %s", err, b)
	}
}

// hangDisk builds testdata/hang for amd64 into a raw disk image (padded
// to whole sectors): the guest copies it from /dev/vdb.
func hangDisk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hang")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/hang")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hang: %v: %s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, make([]byte, (512-len(b)%512)%512)...)
	if err := os.WriteFile(bin+".img", b, 0o644); err != nil {
		t.Fatal(err)
	}
	return bin + ".img"
}
