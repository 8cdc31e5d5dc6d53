package bootloader

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoMTD is returned when /proc/mtd has no partition of the wanted name.
var ErrNoMTD = errors.New("no such MTD partition")

// MTD is a raw flash partition (/dev/mtdN). A regular file stands in for
// one in tests: erasing it writes 0xff, as erased flash reads.
type MTD struct {
	Path      string
	Size      int64
	EraseSize int64
}

// FindMTD looks name up in procMTD (default /proc/mtd), whose lines read
//
//	mtd0: 00100000 00010000 "pv-env"
//
// and returns /dev/mtdN, or the file named by PVTEST-style overrides when the
// device path in the table is absolute.
func FindMTD(procMTD, name string) (*MTD, error) {
	if procMTD == "" {
		procMTD = "/proc/mtd"
	}
	b, err := os.ReadFile(procMTD)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || strings.Trim(f[3], `"`) != name {
			continue
		}
		size, err1 := strconv.ParseInt(f[1], 16, 64)
		erase, err2 := strconv.ParseInt(f[2], 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: bad line %q", procMTD, sc.Text())
		}
		dev := strings.TrimSuffix(f[0], ":")
		if !strings.HasPrefix(dev, "/") {
			dev = "/dev/" + dev
		}
		return &MTD{Path: dev, Size: size, EraseSize: erase}, nil
	}
	return nil, fmt.Errorf("%w %q in %s", ErrNoMTD, name, procMTD)
}

// Read returns the whole partition.
func (m *MTD) Read() ([]byte, error) {
	f, err := os.Open(m.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, m.Size)
	n, err := f.ReadAt(b, 0)
	if n == 0 && err != nil {
		return nil, err
	}
	return b[:n], nil
}

// Erase erases the whole partition.
func (m *MTD) Erase() error {
	f, err := os.OpenFile(m.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return m.erase(f)
}

func (m *MTD) erase(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		_, err := f.WriteAt(bytes.Repeat([]byte{0xff}, int(m.Size)), 0)
		return err
	}
	// struct erase_info_user { __u32 start; __u32 length; }
	info := [2]uint32{0, uint32(m.Size)}
	const memErase = 0x40084d02 // _IOW('M', 2, struct erase_info_user)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), memErase, uintptr(unsafe.Pointer(&info))); errno != 0 {
		return fmt.Errorf("erase %s: %w", m.Path, errno)
	}
	return nil
}

// Write erases the partition and writes b at its start.
func (m *MTD) Write(b []byte) error {
	if int64(len(b)) > m.Size {
		return fmt.Errorf("%s: %d bytes do not fit in %d", m.Path, len(b), m.Size)
	}
	f, err := os.OpenFile(m.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := m.erase(f); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}
