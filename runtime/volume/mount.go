package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// squashfsMagic starts every squashfs image ("hsqs", little endian 0x73717368).
var squashfsMagic = []byte("hsqs")

// CheckSquashfs reports whether file starts with the squashfs magic; the error
// wraps ErrNotSquashfs when it does not.
func CheckSquashfs(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open volume: %w", err)
	}
	defer f.Close()
	return checkSquashfs(f, file)
}

func checkSquashfs(r io.Reader, name string) error {
	head := make([]byte, len(squashfsMagic))
	if _, err := io.ReadFull(r, head); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read volume %s: %w", name, err)
	}
	if !bytes.Equal(head, squashfsMagic) {
		return fmt.Errorf("%s: %w (magic %q, want %q)", name, ErrNotSquashfs, head, squashfsMagic)
	}
	return nil
}

// Loop mounts the image file on target (created if missing) through a
// read-only loop device. The file system type is the extension after the
// last '.'; a squashfs has its magic checked first. Images are always
// read-only: they are hard links into the content-addressed object store,
// and writable data belongs in storage entries.
func (s *Set) Loop(file, target string) error {
	fstype := strings.TrimPrefix(filepath.Ext(file), ".")
	if fstype == "" {
		return fmt.Errorf("volume %s: %w: no extension to tell its file system", file, ErrUnsupported)
	}
	const ro = true
	if fstype == "squashfs" {
		if err := CheckSquashfs(file); err != nil {
			return err
		}
	} else if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	dev, err := attachLoop(file, ro)
	if err != nil {
		return err
	}
	// Closing dev leaves the device to the mount; autoclear frees it on
	// unmount (or right now, if the mount failed).
	defer dev.Close()
	if err := unix.Mount(dev.Name(), target, fstype, unix.MS_RDONLY, ""); err != nil {
		return mountErr(dev.Name()+" ("+file+")", target, err)
	}
	s.add(kindMount, target, fstype+" "+dev.Name()+" "+file)
	return nil
}

// Bind bind-mounts src (a file or directory) on target, creating target like
// src. With ro the bind is remounted read-only.
func (s *Set) Bind(src, target string, ro bool) error {
	return s.bind(src, target, ro, false)
}

// Data recursively bind-mounts the directory src on target (".data" volumes).
func (s *Set) Data(src, target string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("data volume: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data volume %s: not a directory", src)
	}
	return s.bind(src, target, false, true)
}

func (s *Set) bind(src, target string, ro, recursive bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	if err := makeTarget(target, fi.IsDir()); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND)
	if recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(src, target, "", flags, ""); err != nil {
		return mountErr(src, target, err)
	}
	s.add(kindMount, target, "bind "+src)
	if ro {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return mountErr("remount ro", target, err)
		}
	}
	return nil
}

// Tmpfs mounts a fresh tmpfs on target.
func (s *Set) Tmpfs(target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return mountErr("tmpfs", target, err)
	}
	s.add(kindMount, target, "tmpfs")
	return nil
}

func makeTarget(target string, dir bool) error {
	if dir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("create mount point: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	return f.Close()
}
