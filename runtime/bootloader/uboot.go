package bootloader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
	"github.com/pantavisor/pantavisor-go/runtime/internal/atomicfile"
)

// UbootFile keeps the variables in <storage>/boot/uboot.txt, which the
// U-Boot script loads and imports with "env import".
type UbootFile struct {
	path string
}

// OpenUbootFile returns the backend for path; a missing file reads as empty.
func OpenUbootFile(path string) *UbootFile { return &UbootFile{path: path} }

func (u *UbootFile) load() (bootenv.Vars, error) {
	b, err := os.ReadFile(u.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return bootenv.ParseNul(b, bootenv.UbootTxtReadMax), nil
}

// Get implements Env.
func (u *UbootFile) Get(key string) (string, error) {
	e, err := u.load()
	if err != nil {
		return "", err
	}
	return e.Get(key), nil
}

// Set implements Env.
func (u *UbootFile) Set(key, value string) error {
	if err := validVar(key, value); err != nil {
		return err
	}
	e, err := u.load()
	if err != nil {
		return err
	}
	e.Set(key, value)
	b, err := bootenv.EncodeNul(e, bootenv.UbootTxtSize, 0)
	if err != nil {
		return err
	}
	if len(b) > bootenv.UbootTxtReadMax && b[bootenv.UbootTxtReadMax-1] != 0 {
		return fmt.Errorf("%s: env does not fit in %d bytes", u.path, bootenv.UbootTxtReadMax)
	}
	// In place, as GRUB's grubenv: U-Boot's ext4 reader does not replay
	// the journal either.
	return writeInPlace(u.path, b)
}

// Unset implements Env: an empty value, which "env import" deletes.
func (u *UbootFile) Unset(key string) error { return u.Set(key, "") }

// Flush implements Env; every Set is already durable.
func (u *UbootFile) Flush() error { return nil }

// ubootMTD keeps pv_trying (and with PV_BOOTLOADER_MTD_ONLY every variable)
// in an MTD partition; the rest stay in uboot.txt. Flushing erases the
// boot script's pv_trying latch.
type ubootMTD struct {
	file *UbootFile
	dev  *MTD
	only bool
}

func openUboot(o Options) (Env, error) {
	file := OpenUbootFile(filepath.Join(o.Storage, "boot", "uboot.txt"))
	if o.MTDEnv == "" && !o.MTDOnly {
		return file, nil
	}
	name := o.MTDEnv
	if name == "" {
		name = "pv-env"
	}
	dev, err := FindMTD(o.ProcMTD, name)
	if err != nil {
		if !o.MTDOnly {
			return file, nil // no such partition: the file is the env
		}
		return nil, err
	}
	return &ubootMTD{file: file, dev: dev, only: o.MTDOnly}, nil
}

func (m *ubootMTD) loadMTD() (bootenv.Vars, error) {
	b, err := m.dev.Read()
	if err != nil {
		return nil, err
	}
	return bootenv.ParseNul(b, 0), nil
}

func (m *ubootMTD) Get(key string) (string, error) {
	if !m.only {
		return m.file.Get(key)
	}
	e, err := m.loadMTD()
	if err != nil {
		return "", err
	}
	return e.Get(key), nil
}

func (m *ubootMTD) Set(key, value string) error {
	if !m.only {
		return m.file.Set(key, value)
	}
	if err := validVar(key, value); err != nil {
		return err
	}
	e, err := m.loadMTD()
	if err != nil {
		return err
	}
	e.Set(key, value)
	b, err := bootenv.EncodeNul(e, 0, 0)
	if err != nil {
		return err
	}
	return m.dev.Write(b)
}

func (m *ubootMTD) Unset(key string) error { return m.Set(key, "") }

// Flush clears the try latch: erase the whole partition, or with MTD_ONLY
// drop just pv_trying.
func (m *ubootMTD) Flush() error {
	if m.only {
		return m.Set(VarTrying, "")
	}
	return m.dev.Erase()
}

// writeInPlace rewrites path in place when it already has len(b) bytes:
// boot loaders (GRUB, U-Boot's ext4 reader) read the storage without
// replaying the ext4 journal, so a file replaced by rename can look
// unchanged to them until the journal is checkpointed (a reboot right
// after an update would boot the old revision). An in-place rewrite keeps
// the inode and its blocks, changes only data, and is on disk once
// synced, the way GRUB's own save_env writes it. A missing file or one of
// another size is created once, atomically.
func writeInPlace(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return writeFileAtomic(path, b)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(b)) {
		f.Close()
		return writeFileAtomic(path, b)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// writeFileAtomic replaces path (creating its directory) with b.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o644)
}
