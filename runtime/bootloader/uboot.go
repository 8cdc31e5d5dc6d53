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
	return writeFileAtomic(u.path, b)
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

// writeFileAtomic replaces path (creating its directory) with b.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o644)
}
