package bootloader

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// Raspberry Pi tryboot A/B: partition 1 holds autoboot.txt, which names the
// normal ([all]) and the try ([tryboot]) boot partition; 2 and 3 are the A
// and B boot FATs, each with a pv_rev.txt listing the revisions its image
// may boot. The variables live in <storage>/boot/rpiab.txt (512 bytes,
// NUL-separated). The formats are runtime/bootenv's.
const (
	rpiBootSel  = 1
	rpiAutoboot = bootenv.AutobootFile
	rpiRevFile  = bootenv.RevListFile
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
	TrybootPath string // default <Root>/proc/device-tree/chosen/bootloader/tryboot
	// Root prefixes /proc/device-tree (the firmware's tryboot and
	// boot-mode) and /dev: a test root simulates the firmware ("" = /).
	Root string
}

// TrybootFile is where the firmware tells Linux that it booted the
// [tryboot] partition (a big-endian u32, non-zero: tryboot).
const TrybootFile = "proc/device-tree/chosen/bootloader/tryboot"

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
		r.parts = DiskPartitions{Device: rpiDevice(ro.Root)}
	}
	if r.mbox == nil {
		m := VCMailbox{Device: filepath.Join("/", ro.Root, "dev/vcio")}
		if ro.Root == "" {
			m.Load = LoadVCIO
		}
		r.mbox = m
	}
	if r.tryboot == "" {
		r.tryboot = filepath.Join("/", ro.Root, TrybootFile)
	}
	ab, err := r.parts.ReadFile(rpiBootSel, rpiAutoboot)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rpiAutoboot, err)
	}
	if r.bootPart, r.tryPart, err = bootenv.ParseAutoboot(ab); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RPiAB) load() (bootenv.Vars, error) {
	b, err := os.ReadFile(r.envPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return bootenv.ParseNul(b, bootenv.RPiABSize), nil
}

// Get implements Env.
func (r *RPiAB) Get(key string) (string, error) {
	e, err := r.load()
	if err != nil {
		return "", err
	}
	return e.Get(key), nil
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
	e.Set(key, value)
	b, err := bootenv.EncodeNul(e, bootenv.RPiABSize, 0)
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
	revs := []string{rev}
	if try != "" {
		if prev, err := r.parts.ReadFile(r.tryPart, rpiRevFile); err == nil {
			revs = append(bootenv.ParseRevList(prev), rev)
		}
	}
	list, fits := bootenv.RevList(revs)
	force := false
	if !fits {
		list, _ = bootenv.RevList([]string{rev})
		force = true
	}
	img, err := openBootImage(filepath.Join(trailDir, ".pv"))
	if err != nil {
		return false, err
	}
	defer img.Close()
	if err := r.parts.WriteImage(r.tryPart, img); err != nil {
		return false, fmt.Errorf("write boot image to partition %d: %w", r.tryPart, err)
	}
	if err := r.parts.WriteFile(r.tryPart, rpiRevFile, list); err != nil {
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
	if err := r.parts.WriteFile(rpiBootSel, rpiAutoboot, bootenv.Autoboot(r.tryPart, r.bootPart)); err != nil {
		return err
	}
	r.bootPart, r.tryPart = r.tryPart, r.bootPart
	list, _ := bootenv.RevList([]string{rev})
	return r.parts.WriteFile(r.bootPart, rpiRevFile, list)
}

// tried reports whether the firmware booted the [tryboot] partition.
func (r *RPiAB) tried() bool {
	b, err := os.ReadFile(r.tryboot)
	return err == nil && len(b) >= 4 && binary.BigEndian.Uint32(b) != 0
}

// Booted is the revision this boot runs: the firmware passes no pv_rev
// on the command line, it says whether it booted the try partition
// (upstream rpiab.c does the same).
func (r *RPiAB) Booted(done, try string) string {
	if try != "" && r.tried() {
		return try
	}
	return done
}

// Validate checks that the firmware booted the partition Pantavisor
// expects: on a tryboot the tried revision must be in the try partition's
// list, on a normal boot the committed one must be in the boot partition's.
// A partition without pv_rev.txt (factory image) is accepted.
func (r *RPiAB) Validate(done, try string) error {
	tried := r.tried()
	part, want := r.bootPart, done
	if tried {
		part, want = r.tryPart, try
	}
	b, err := r.parts.ReadFile(part, rpiRevFile)
	revs := bootenv.ParseRevList(b)
	if err != nil || len(revs) == 0 || slices.Contains(revs, want) {
		return nil
	}
	return fmt.Errorf("partition %d (%s) does not list revision %q", part, strings.Join(revs, ","), want)
}

// rpiDevice maps a partition number to its block device: SD/eMMC, or USB
// mass storage when the firmware says it booted from there.
func rpiDevice(root string) func(int) string {
	disk := filepath.Join("/", root, "dev/mmcblk0p")
	if b, err := os.ReadFile(filepath.Join("/", root, "proc/device-tree/chosen/bootloader/boot-mode")); err == nil && len(b) >= 4 {
		if m := binary.BigEndian.Uint32(b); m == 4 || m == 5 { // USB-MSD, BCM-USB-MSD
			disk = filepath.Join("/", root, "dev/sda")
		}
	}
	return func(n int) string { return disk + strconv.Itoa(n) }
}
