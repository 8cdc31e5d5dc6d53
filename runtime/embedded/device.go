package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ext2/3/4 superblock: it starts 1024 bytes into the device.
const (
	sbOffset     = 1024
	sbMagicOff   = 0x38
	sbLabelOff   = 0x78
	sbUUIDOff    = 0x68
	ext4SuperMag = 0xEF53
)

// Superblock holds what Pantavisor reads of an ext2/3/4 superblock.
type Superblock struct {
	Label string
	UUID  string
}

// ReadSuperblock reads the ext2/3/4 superblock of a device or image.
func ReadSuperblock(r io.ReaderAt) (Superblock, error) {
	b := make([]byte, 256)
	if _, err := r.ReadAt(b, sbOffset); err != nil {
		return Superblock{}, fmt.Errorf("read superblock: %w", err)
	}
	if binary.LittleEndian.Uint16(b[sbMagicOff:]) != ext4SuperMag {
		return Superblock{}, fmt.Errorf("no ext2/3/4 superblock")
	}
	label := b[sbLabelOff : sbLabelOff+16]
	if i := bytes.IndexByte(label, 0); i >= 0 {
		label = label[:i]
	}
	u := b[sbUUIDOff : sbUUIDOff+16]
	uuid := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	return Superblock{Label: string(label), UUID: uuid}, nil
}

// FindDevice resolves a storage spec as upstream PV_STORAGE_DEVICE takes it:
// "LABEL=<label>", "UUID=<uuid>" or a device path ("/dev/vda3"). It scans
// the block devices listed in /sys/class/block.
func FindDevice(spec string) (string, error) {
	return findDevice(spec, "/sys/class/block", "/dev")
}

// findDevice is FindDevice over any sysfs block class and /dev directory
// (tests pass testdata directories).
func findDevice(spec, sysBlock, devDir string) (string, error) {
	key, val, ok := strings.Cut(spec, "=")
	if !ok {
		if _, err := os.Stat(spec); err != nil {
			return "", fmt.Errorf("%s: %w", spec, ErrNoDevice)
		}
		return spec, nil
	}
	if key != "LABEL" && key != "UUID" {
		return "", fmt.Errorf("storage device %q: want LABEL=, UUID= or a path", spec)
	}
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return "", fmt.Errorf("scan block devices: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// Partitions ("vda3") sort after their disk ("vda"); prefer them by
	// scanning in reverse, so a partition wins over a whole-disk match.
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		dev := filepath.Join(devDir, n)
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		sb, err := ReadSuperblock(f)
		f.Close()
		if err != nil {
			continue
		}
		if (key == "LABEL" && sb.Label == val) || (key == "UUID" && strings.EqualFold(sb.UUID, val)) {
			return dev, nil
		}
	}
	return "", fmt.Errorf("%s: %w", spec, ErrNoDevice)
}

// WaitDevice polls FindDevice until the device appears, ctx ends or
// timeout passes (upstream PV_STORAGE_WAIT, in seconds there).
func WaitDevice(ctx context.Context, spec string, timeout time.Duration) (string, error) {
	return waitFor(ctx, timeout, 50*time.Millisecond, func() (string, error) { return FindDevice(spec) })
}

func waitFor(ctx context.Context, timeout, every time.Duration, find func() (string, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		dev, err := find()
		if err == nil {
			return dev, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait %s: %w", timeout, err)
		case <-t.C:
		}
	}
}
