package bootloader

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Raspberry Pi tryboot A/B: partition 1 holds autoboot.txt, which names the
// normal ([all]) and the try ([tryboot]) boot partition; 2 and 3 are the A
// and B boot FATs, each with a pv_rev.txt listing the revisions its image
// may boot. The variables live in <storage>/boot/rpiab.txt (512 bytes,
// NUL-separated).
const (
	rpiEnvSize    = 512
	rpiRevListMax = 511
	rpiBootSel    = 1
	rpiAutoboot   = "autoboot.txt"
	rpiRevFile    = "pv_rev.txt"
)

// Partitions reaches the boot partitions by number (1 = bootsel).
type Partitions interface {
	ReadFile(part int, name string) ([]byte, error)
	WriteFile(part int, name string, data []byte) error
	// WriteImage writes a raw filesystem image over the partition.
	WriteImage(part int, r io.Reader) error
}

// Mailbox arms the firmware's one-shot tryboot flag for the next reboot.
type Mailbox interface {
	SetTryboot(on bool) error
}

// RPiOptions replace the real devices, for tests and odd boards.
type RPiOptions struct {
	Parts       Partitions
	Mailbox     Mailbox
	TrybootPath string // default /proc/device-tree/chosen/bootloader/tryboot
}

// RPiAB is the rpiab backend.
type RPiAB struct {
	envPath string
	parts   Partitions
	mbox    Mailbox
	tryboot string

	bootPart, tryPart int
}

func openRPiAB(o Options) (*RPiAB, error) {
	r := &RPiAB{envPath: filepath.Join(o.Storage, "boot", "rpiab.txt")}
	ro := o.RPi
	if ro == nil {
		ro = &RPiOptions{}
	}
	r.parts, r.mbox, r.tryboot = ro.Parts, ro.Mailbox, ro.TrybootPath
	if r.parts == nil {
		r.parts = DiskPartitions{Device: rpiDevice()}
	}
	if r.mbox == nil {
		r.mbox = VCMailbox{}
	}
	if r.tryboot == "" {
		r.tryboot = "/proc/device-tree/chosen/bootloader/tryboot"
	}
	ab, err := r.parts.ReadFile(rpiBootSel, rpiAutoboot)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rpiAutoboot, err)
	}
	if r.bootPart, r.tryPart, err = parseAutoboot(ab); err != nil {
		return nil, err
	}
	return r, nil
}

// parseAutoboot returns boot_partition of the [all] and [tryboot] sections.
func parseAutoboot(b []byte) (boot, try int, err error) {
	section := "all"
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "boot_partition" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 2 {
			return 0, 0, fmt.Errorf("%s: bad boot_partition %q", rpiAutoboot, v)
		}
		switch section {
		case "all":
			boot = n
		case "tryboot":
			try = n
		}
	}
	if boot == 0 || try == 0 || boot == try {
		return 0, 0, fmt.Errorf("%s: need distinct boot_partition in [all] and [tryboot]", rpiAutoboot)
	}
	return boot, try, nil
}

func autoboot(boot, try int) []byte {
	return fmt.Appendf(nil, "[all]\ntryboot_a_b=1\nboot_partition=%d\n[tryboot]\nboot_partition=%d\n", boot, try)
}

func (r *RPiAB) load() (*nulEnv, error) {
	b, err := os.ReadFile(r.envPath)
	if errors.Is(err, os.ErrNotExist) {
		return parseNulEnv(nil, 0), nil
	}
	if err != nil {
		return nil, err
	}
	return parseNulEnv(b, rpiEnvSize), nil
}

// Get implements Env.
func (r *RPiAB) Get(key string) (string, error) {
	e, err := r.load()
	if err != nil {
		return "", err
	}
	return e.get(key), nil
}

// Set implements Env; a non-empty pv_try also arms tryboot.
func (r *RPiAB) Set(key, value string) error {
	if err := validVar(key, value); err != nil {
		return err
	}
	e, err := r.load()
	if err != nil {
		return err
	}
	e.set(key, value)
	b, err := e.encode(rpiEnvSize, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", r.envPath, err)
	}
	if err := writeFileAtomic(r.envPath, b); err != nil {
		return err
	}
	if key == VarTry && value != "" {
		return r.mbox.SetTryboot(true)
	}
	return nil
}

// Unset implements Env.
func (r *RPiAB) Unset(key string) error { return r.Set(key, "") }

// Flush implements Env.
func (r *RPiAB) Flush() error { return nil }

// InstallUpdate writes the revision's boot image raw onto the try
// partition and lists rev in its pv_rev.txt. Stacked non-reboot updates
// append to the list; when it would not fit, a reboot is forced.
func (r *RPiAB) InstallUpdate(rev, trailDir string) (bool, error) {
	try, err := r.Get(VarTry)
	if err != nil {
		return false, err
	}
	list := rev
	if try != "" {
		prev, err := r.parts.ReadFile(r.tryPart, rpiRevFile)
		if err == nil && len(bytes.TrimSpace(prev)) > 0 {
			list = strings.TrimSpace(string(prev)) + "," + rev
		}
	}
	force := false
	if len(list) > rpiRevListMax {
		list, force = rev, true
	}
	img, err := openBootImage(filepath.Join(trailDir, ".pv"))
	if err != nil {
		return false, err
	}
	defer img.Close()
	if err := r.parts.WriteImage(r.tryPart, img); err != nil {
		return false, fmt.Errorf("write boot image to partition %d: %w", r.tryPart, err)
	}
	if err := r.parts.WriteFile(r.tryPart, rpiRevFile, []byte(list)); err != nil {
		return false, err
	}
	return force, nil
}

// openBootImage opens rpiboot.img, or gunzips rpiboot.img.gz.
func openBootImage(dir string) (io.ReadCloser, error) {
	if f, err := os.Open(filepath.Join(dir, "rpiboot.img")); err == nil {
		return f, nil
	}
	f, err := os.Open(filepath.Join(dir, "rpiboot.img.gz"))
	if err != nil {
		return nil, fmt.Errorf("no rpiboot.img[.gz] in %s: %w", dir, err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// CommitUpdate makes the tried partition the normal one: autoboot.txt with
// the two partitions swapped, and its pv_rev.txt reset to rev alone.
func (r *RPiAB) CommitUpdate(rev string) error {
	if err := r.parts.WriteFile(rpiBootSel, rpiAutoboot, autoboot(r.tryPart, r.bootPart)); err != nil {
		return err
	}
	r.bootPart, r.tryPart = r.tryPart, r.bootPart
	return r.parts.WriteFile(r.bootPart, rpiRevFile, []byte(rev))
}

// Validate checks that the firmware booted the partition Pantavisor
// expects: on a tryboot the tried revision must be in the try partition's
// list, on a normal boot the committed one must be in the boot partition's.
// A partition without pv_rev.txt (factory image) is accepted.
func (r *RPiAB) Validate(done, try string) error {
	tried := false
	if b, err := os.ReadFile(r.tryboot); err == nil && len(b) >= 4 {
		tried = binary.BigEndian.Uint32(b) != 0
	}
	part, want := r.bootPart, done
	if tried {
		part, want = r.tryPart, try
	}
	b, err := r.parts.ReadFile(part, rpiRevFile)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	for _, rev := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if rev == want {
			return nil
		}
	}
	return fmt.Errorf("partition %d (%s) does not list revision %q", part, strings.TrimSpace(string(b)), want)
}

// rpiDevice maps a partition number to its block device: SD/eMMC, or USB
// mass storage when the firmware says it booted from there.
func rpiDevice() func(int) string {
	disk := "/dev/mmcblk0p"
	if b, err := os.ReadFile("/proc/device-tree/chosen/bootloader/boot-mode"); err == nil && len(b) >= 4 {
		if m := binary.BigEndian.Uint32(b); m == 4 || m == 5 { // USB-MSD, BCM-USB-MSD
			disk = "/dev/sda"
		}
	}
	return func(n int) string { return disk + strconv.Itoa(n) }
}
