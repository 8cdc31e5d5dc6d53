package logserver

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrBadSize is returned for an unparsable PV_LOG_DIR_MAXSIZE.
var ErrBadSize = errors.New("bad size")

// ParseDirMaxSize parses a PV_LOG_DIR_MAXSIZE value: plain bytes, a
// B/K/KB/M/MB/G/GB/T/TB suffix (powers of 1024, any case) or a percentage
// of partition. "0" (or "") means auto and returns 0.
func ParseDirMaxSize(s string, partition int64) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	if strings.HasSuffix(t, "%") {
		p, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
		if err != nil || p < 0 || p > 100 {
			return 0, fmt.Errorf("%w %q: percentage must be 0..100", ErrBadSize, s)
		}
		return int64(float64(partition) * p / 100), nil
	}
	u := strings.ToUpper(t)
	mult := int64(1)
	for _, sfx := range []struct {
		s string
		m int64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(u, sfx.s) {
			u, mult = strings.TrimSpace(strings.TrimSuffix(u, sfx.s)), sfx.m
			break
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w %q: want bytes with optional K/M/G/T[B] or %% suffix", ErrBadSize, s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%w %q: too large", ErrBadSize, s)
	}
	return n * mult, nil
}

// Partition describes the filesystem holding the log directory.
type Partition struct {
	Size  int64 // bytes
	Tmpfs bool
}

// PartitionOf finds the filesystem of dir from /proc/mounts and statfs.
func PartitionOf(dir string) (Partition, error) {
	return partitionOf(dir, "/proc/mounts")
}

func partitionOf(dir, mounts string) (Partition, error) {
	// statfs needs an existing path: walk up to the nearest existing parent.
	p := filepath.Clean(dir)
	for {
		if _, err := os.Stat(p); err == nil || p == "/" || p == "." {
			break
		}
		p = filepath.Dir(p)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return Partition{}, fmt.Errorf("statfs %s: %w", p, err)
	}
	part := Partition{Size: int64(st.Blocks) * int64(st.Bsize)}
	if abs, err := filepath.EvalSymlinks(p); err == nil {
		p = abs
	}
	f, err := os.Open(mounts)
	if err != nil {
		part.Tmpfs = st.Type == unix.TMPFS_MAGIC
		return part, nil
	}
	defer f.Close()
	best := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mp := fields[1]
		if (p == mp || mp == "/" || strings.HasPrefix(p, mp+"/")) && len(mp) > best {
			best = len(mp)
			part.Tmpfs = fields[2] == "tmpfs"
		}
	}
	return part, nil
}

// AutoDirMaxSize is the auto budget: 100% of a tmpfs, 10% of anything else.
func AutoDirMaxSize(p Partition) int64 {
	if p.Tmpfs {
		return p.Size
	}
	return p.Size / 10
}

// ResolveDirMaxSize turns a PV_LOG_DIR_MAXSIZE value into bytes for dir:
// 0/"" = auto; values over the partition size fall back to auto.
func ResolveDirMaxSize(value, dir string) (int64, error) {
	part, err := PartitionOf(dir)
	if err != nil {
		return 0, err
	}
	n, err := ParseDirMaxSize(value, part.Size)
	if err != nil {
		return 0, err
	}
	if n == 0 || (part.Size > 0 && n > part.Size) {
		return AutoDirMaxSize(part), nil
	}
	return n, nil
}

// Budget holds the sizes derived from PV_LOG_DIR_MAXSIZE (spec §6).
type Budget struct {
	Max, Gap, RotSize, High, Low int64
}

// NewBudget computes gap = max/hysteresis, rot_size = gap/rotate,
// high = 0.9 max, low = max - gap. Factors <= 0 take the defaults 4 and 5.
func NewBudget(max int64, hysteresis, rotate int) Budget {
	if hysteresis <= 0 {
		hysteresis = 4
	}
	if rotate <= 0 {
		rotate = 5
	}
	b := Budget{Max: max, Gap: max / int64(hysteresis)}
	b.RotSize = b.Gap / int64(rotate)
	if b.RotSize < 1 {
		b.RotSize = 1
	}
	b.High = max * 9 / 10
	b.Low = max - b.Gap
	return b
}
