// Package boottest boots a built image in QEMU (TCG only: KVM is never
// used) with SeaBIOS or OVMF, or U-Boot as the firmware of an ARM "virt"
// machine, reads the serial console and waits for a
// marker line; it also edits and reads the GRUB environment block on the
// image's storage partition, to drive the pv_try/rollback contract. It can
// type on the serial console too (Options.Input: keys sent once a text,
// such as a prompt, appeared).
//
//	res, err := boottest.Boot(ctx, boottest.Options{Image: img, Firmware: boottest.UEFI, Marker: "PV-SMOKE-OK"})
//	fmt.Println(res.MarkerLine, res.Elapsed)
package boottest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// Firmware is the PC firmware QEMU runs.
type Firmware string

// Firmwares.
const (
	BIOS Firmware = "bios" // SeaBIOS (QEMU's default)
	UEFI Firmware = "uefi" // OVMF from Debian's ovmf package
	// UBoot is U-Boot from Debian's u-boot-qemu as the machine's
	// firmware (-bios); its distro boot runs the image's boot.scr.
	UBoot Firmware = "uboot"
)

// UBootFirmware are the U-Boot builds of Debian's u-boot-qemu per Debian
// architecture, and the CPU QEMU emulates for them (virt's default CPU
// is 32-bit).
var UBootFirmware = map[string]struct{ Bios, CPU string }{
	"arm64": {"/usr/lib/u-boot/qemu_arm64/u-boot.bin", "cortex-a57"},
	"armhf": {"/usr/lib/u-boot/qemu_arm/u-boot.bin", "cortex-a15"},
}

// Machines are how QEMU machines other than a PC or ARM virt attach what
// the boot test gives them: malta's U-Boot reads the PIIX4 IDE disk and
// its kernel sees at most 256 MiB; its NIC is the onboard PCnet. Their
// U-Boot is built by mkimage (bootloader.source) and is the machine's
// flash, Options.Flash.
var Machines = map[string]struct {
	Disk, NIC string
	MemMiB    int
	// UpdateDisk is the guest's device of the first of Options.Disks.
	UpdateDisk string
}{
	"malta": {Disk: "ide", NIC: "pcnet", MemMiB: 256, UpdateDisk: "/dev/sdb"},
}

// UpdateDisk is the guest's device of the first of Options.Disks on a
// machine.
func UpdateDisk(machine string) string {
	if m, ok := Machines[machine]; ok {
		return m.UpdateDisk
	}
	return "/dev/vdb"
}

// OVMF files (Debian ovmf, 4 MiB flash layout).
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// ErrNoMarker means the machine stopped or timed out without the marker.
var ErrNoMarker = errors.New("marker not seen on the console")

// Options configure Boot.
type Options struct {
	// Image is booted in place (it is written to: GRUB saves pv_trying).
	Image string
	// Arch is the Debian architecture of the image (mkimage/arch: its
	// QEMU emulator and machine); "" is amd64.
	Arch string
	// Disks are more raw disk images, attached read-only after Image
	// (virtio: /dev/vdb, /dev/vdc, …): data for the guest, such as an
	// update to install.
	Disks    []string
	Firmware Firmware
	// Flash is the flash image of a machine whose U-Boot mkimage built
	// (<target>.pflash.img beside the image): its firmware for UBoot.
	Flash string
	// Marker is the console line prefix that means success.
	Marker string
	// Expect are console substrings that must all appear too, before or
	// after the marker (e.g. "platform=pv-mgmt status=STARTED"); the boot
	// ends once the marker and all of them were seen.
	Expect []string
	// Fail is a prefix that means failure (optional).
	Fail    string
	Timeout time.Duration
	// Grace bounds the wait for Expect strings once the marker was seen
	// (default 2 minutes): a line that never comes fails the boot early.
	Grace  time.Duration
	MemMiB int
	// Console receives the raw console output (optional).
	Console io.Writer
	// Raspi are the files QEMU loads for the Raspi firmware (from
	// ReadRaspiBoot).
	Raspi *RaspiBoot
	// Input is typed on the serial console, one step after the other:
	// each step waits for its text on the console (after the previous
	// step was typed) and then writes its keys to QEMU's standard input.
	Input []Input
	// Devices are more QEMU -device options ("i6300esb": a watchdog).
	Devices []string
	// Globals are -global options (driver.property=value).
	Globals []string
	// Hold keeps the machine running this long once the marker and every
	// Expect string were seen (default: 3 s), e.g. to see whether it
	// resets by itself (Result.Exited).
	Hold time.Duration
	// HostFwd are QEMU user-network forwards ("tcp:127.0.0.1:8080-:80"):
	// host ports that reach the guest's services.
	HostFwd []string
}

// Input is one step of typing on the serial console.
type Input struct {
	// After is console text to wait for; it may be part of a line that is
	// not finished yet (a prompt: "Press [d] for debug ash shell... ").
	After string
	// Keys are written as they are ("d", "echo hi\n").
	Keys string
	// Do, when set, runs on the host once After appeared (in its own
	// goroutine: the console keeps being read) and its answer is typed
	// instead of Keys, e.g. a marker saying how a host-side check went.
	Do func() string
}

// InitLine is what Linux prints when it hands over to the initrd's /init.
const InitLine = "Run /init as init process"

// Result of a boot.
type Result struct {
	MarkerLine string
	// Elapsed is the time from starting QEMU to the marker.
	Elapsed time.Duration
	// Init is the time from starting QEMU to the kernel running /init
	// (zero when the kernel did not print InitLine).
	Init time.Duration
	// Exited: QEMU ended by itself (a power-off, or a reset under
	// -no-reboot) rather than being stopped by Boot; Ended is when.
	Exited bool
	Ended  time.Duration
	// CPU is the user+system time QEMU had used when the marker
	// appeared (zero when /proc could not tell).
	CPU time.Duration
	// InitCPU is QEMU's user+system time when the kernel ran /init:
	// firmware, boot loader, kernel and initramfs unpacking, less
	// sensitive to a loaded machine than Init.
	InitCPU time.Duration
	// Seen maps each Expect string to the time it first appeared.
	Seen    map[string]time.Duration
	Console string
}

// ErrMissing means the marker appeared but not every Expect string did.
var ErrMissing = errors.New("expected console lines missing")

// Boot runs QEMU until the marker and every Expect string (or the Fail
// line) appeared, then gives the machine 3 s to power off before stopping
// it; or until the timeout.
func Boot(ctx context.Context, o Options) (Result, error) {
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.MemMiB == 0 {
		o.MemMiB = 1024
	}
	if o.Grace == 0 {
		o.Grace = 2 * time.Minute
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	a, err := arch.Lookup(o.Arch)
	if err != nil {
		return Result{}, fmt.Errorf("boottest: %w", err)
	}
	mach, special := Machines[a.Machine]
	diskIf, ro := "virtio", "readonly=on"
	if special {
		diskIf = mach.Disk
		o.MemMiB = min(o.MemMiB, mach.MemMiB)
		// IDE disks cannot be read-only: the guest's writes go to a
		// temporary overlay instead.
		ro = "snapshot=on"
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	args := []string{"-machine", a.Machine + ",accel=tcg", "-m", strconv.Itoa(o.MemMiB), "-nographic", "-no-reboot", "-display", "none",
		"-drive", "file=" + o.Image + ",format=raw,if=" + diskIf}
	for _, d := range o.Disks {
		args = append(args, "-drive", "file="+d+",format=raw,if="+diskIf+","+ro)
	}
	if o.Firmware == Raspi {
		if args, err = raspiArgs(o, a); err != nil {
			return Result{}, err
		}
	}
	if o.Firmware == UEFI {
		// each machine its own copy of the UEFI variables (boots may run
		// in parallel)
		data, err := os.ReadFile(OVMFVars)
		if err != nil {
			return Result{}, fmt.Errorf("boottest: OVMF: %w", err)
		}
		f, err := os.CreateTemp("", "pv-ovmf-vars-*.fd")
		if err != nil {
			return Result{}, err
		}
		vars := f.Name()
		defer os.Remove(vars)
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Result{}, err
		}
		args = append(args, "-drive", "if=pflash,format=raw,readonly=on,file="+OVMFCode, "-drive", "if=pflash,format=raw,file="+vars)
	}
	if o.Firmware == UBoot && special {
		if o.Flash == "" {
			return Result{}, fmt.Errorf("boottest: a %s machine boots the U-Boot of Options.Flash", a.Machine)
		}
		// -bios copies the file into the machine's flash (malta swaps
		// its words on little-endian, as u-boot-swap.bin expects).
		args = append(args, "-bios", o.Flash)
	} else if o.Firmware == UBoot {
		u, ok := UBootFirmware[a.Debian]
		if !ok {
			return Result{}, fmt.Errorf("boottest: no U-Boot firmware for %s", a.Debian)
		}
		args = append(args, "-cpu", u.CPU, "-bios", u.Bios)
	}
	model := ""
	if o.Firmware == UBoot {
		// virt machines have no NIC of their own: the one pv-network
		// configures is virtio; malta's is its onboard PCnet
		model = "virtio-net-pci"
		if special {
			model = mach.NIC
		}
	}
	args = append(args, "-nic", userNIC(model, o.HostFwd))
	for _, d := range o.Devices {
		args = append(args, "-device", d)
	}
	for _, g := range o.Globals {
		args = append(args, "-global", g)
	}
	cmd := exec.CommandContext(ctx, a.QEMU, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, err
	}
	var keys io.WriteCloser
	if len(o.Input) > 0 {
		if keys, err = cmd.StdinPipe(); err != nil {
			return Result{}, err
		}
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("boottest: qemu: %w", err)
	}
	res := Result{Seen: map[string]time.Duration{}}
	// A probe init powers off by itself; a real daemon keeps running:
	// stop the machine shortly after everything awaited was seen.
	var once sync.Once
	hold := o.Hold
	if hold == 0 {
		hold = 3 * time.Second
	}
	stop := func() { once.Do(func() { time.AfterFunc(hold, cancel) }) }
	var console bytes.Buffer
	var mu sync.Mutex
	done := make(chan struct{})
	typing := typist{steps: o.Input, keys: &lockedWriter{w: keys}}
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		sc.Split(typing.lines)
		for sc.Scan() {
			l := strings.TrimRight(sc.Text(), "\r")
			mu.Lock()
			console.WriteString(l + "\n")
			if o.Console != nil {
				fmt.Fprintln(o.Console, l)
			}
			if res.Init == 0 && strings.Contains(l, InitLine) {
				res.Init = time.Since(start)
				res.InitCPU = procCPU(cmd.Process.Pid)
			}
			for _, e := range o.Expect {
				if _, ok := res.Seen[e]; !ok && strings.Contains(l, e) {
					res.Seen[e] = time.Since(start)
				}
			}
			if res.MarkerLine == "" {
				if i := strings.Index(l, o.Marker); i >= 0 {
					res.MarkerLine, res.Elapsed = l[i:], time.Since(start)
					res.CPU = procCPU(cmd.Process.Pid)
					time.AfterFunc(o.Grace, cancel)
				} else if o.Fail != "" && strings.Contains(l, o.Fail) {
					res.MarkerLine = l
					stop()
				}
			}
			if res.MarkerLine != "" && len(res.Seen) == len(o.Expect) {
				stop()
			}
			mu.Unlock()
		}
	}()
	<-done
	werr := cmd.Wait()
	res.Ended, res.Exited = time.Since(start), ctx.Err() == nil
	res.Console = console.String()
	if res.MarkerLine == "" || !strings.HasPrefix(res.MarkerLine, o.Marker) {
		return res, fmt.Errorf("boottest: %s boot of %s: %w (qemu: %v; last line %q)", o.Firmware, filepath.Base(o.Image), ErrNoMarker, werr, lastLine(res.Console))
	}
	var missing []string
	for _, e := range o.Expect {
		if _, ok := res.Seen[e]; !ok {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("boottest: %s boot of %s: %w: %q", o.Firmware, filepath.Base(o.Image), ErrMissing, missing)
	}
	return res, nil
}

// procCPU is the user+system time of process pid so far (fields 14 and
// 15 of /proc/<pid>/stat, in USER_HZ ticks), zero when it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	// f[0] is field 3 (state): utime and stime are f[11] and f[12].
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+st) * time.Second / 100
}

// userNIC is the -nic option: the machine's one NIC (model "" keeps the
// machine's default) on QEMU's user network, with the forwards.
// restrict=on keeps the guest off every address but QEMU's own DHCP and
// the forwards: a booted image would otherwise try the Hub of its
// pantahub.config (api.pantahub.com) through the host.
func userNIC(model string, fwd []string) string {
	parts := []string{"user", "restrict=on"}
	if model != "" {
		parts = append(parts, "model="+model)
	}
	for _, f := range fwd {
		parts = append(parts, "hostfwd="+f)
	}
	return strings.Join(parts, ",")
}

// lockedWriter serialises the typist's writes with those of Do steps.
type lockedWriter struct {
	mu sync.Mutex
	w  io.WriteCloser
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return len(p), nil
	}
	return l.w.Write(p)
}

func (l *lockedWriter) Close() error { return nil }

// typist types the Input steps: it looks at the console bytes as they
// come, unfinished lines included (a prompt waits for a key, not a
// newline).
type typist struct {
	steps []Input
	keys  io.WriteCloser
	seen  string // console text since the last step was typed
	fed   int    // bytes at the start of the scanner's buffer already seen
}

// lines is a bufio.SplitFunc: bufio.ScanLines that types the next step
// once its text showed up in the bytes read so far.
func (ty *typist) lines(data []byte, atEOF bool) (int, []byte, error) {
	if len(data) > ty.fed && len(ty.steps) > 0 {
		ty.look(string(data[ty.fed:]))
	}
	ty.fed = max(ty.fed, len(data))
	adv, tok, err := bufio.ScanLines(data, atEOF)
	ty.fed -= adv // the scanner drops what was advanced over
	return adv, tok, err
}

// look adds console text and types every step whose text appeared.
func (ty *typist) look(text string) {
	ty.seen += text
	for len(ty.steps) > 0 {
		i := strings.Index(ty.seen, ty.steps[0].After)
		if i < 0 {
			// Keep enough to match a text split between two reads.
			if n := len(ty.seen) - len(ty.steps[0].After); n > 0 {
				ty.seen = ty.seen[n:]
			}
			return
		}
		ty.seen = ty.seen[i+len(ty.steps[0].After):]
		if do := ty.steps[0].Do; do != nil {
			go func() { io.WriteString(ty.keys, do()) }()
		} else {
			io.WriteString(ty.keys, ty.steps[0].Keys)
		}
		ty.steps = ty.steps[1:]
	}
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}

// envBlock finds the file system block of /boot/grubenv in the ext4
// partition starting at byte off of img (debugfs reads the image at an
// offset; nothing is mounted). -c (no bitmaps) reads a file system that a
// stopped machine left with its journal to replay, as GRUB does.
func envBlock(img string, off int64) (int64, error) {
	out, err := exec.Command("debugfs", "-c", "-R", "blocks /boot/grubenv", fmt.Sprintf("%s?offset=%d", img, off)).Output()
	if err != nil {
		return 0, fmt.Errorf("boottest: debugfs: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 1 {
		return 0, fmt.Errorf("boottest: /boot/grubenv spans blocks %q, want one", out)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// ReadEnv reads /boot/grubenv from the storage partition at byte offset
// off (4 KiB ext4 blocks).
func ReadEnv(img string, off int64) (bootenv.Vars, error) {
	blk, err := envBlock(img, off)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, bootenv.GrubSize)
	if _, err := f.ReadAt(b, off+blk*4096); err != nil {
		return nil, err
	}
	return bootenv.ParseGrub(b)
}

// WriteEnv rewrites /boot/grubenv in place, the way GRUB's save_env does.
func WriteEnv(img string, off int64, vars bootenv.Vars) error {
	blk, err := envBlock(img, off)
	if err != nil {
		return err
	}
	b, err := bootenv.EncodeGrub(vars)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off+blk*4096); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
