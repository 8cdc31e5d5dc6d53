//go:build linux

package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

var (
	errExist = unix.EEXIST
	errNoDev = unix.ENODEV
	errPerm  = unix.EPERM
)

func TestFinitRejectsGarbage(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Skipf(t, "needs root")
	}
	// Not an ELF module: the kernel refuses it without side effects
	// (ENOEXEC, or EPERM where module loading is locked down).
	p := filepath.Join(t.TempDir(), "garbage.ko")
	os.WriteFile(p, []byte("this is not a kernel module\n"), 0o644)
	err := finit(p, "")
	var pe *os.PathError
	if err == nil || !errors.As(err, &pe) || pe.Op != "finit_module" {
		t.Errorf("finit(garbage) = %v, want a finit_module error", err)
	}
	if isExist(err) || isNotApplicable(err) {
		t.Errorf("finit(garbage) = %v, taken for loaded or not applicable", err)
	}
}

func TestLoadAllKernelAnswers(t *testing.T) {
	k := &fakeKernel{errs: map[string]error{"jbd2": errExist, "crc16": errNoDev, "mbcache": errPerm}}
	l, _ := testLoader(t, k)
	got, err := l.LoadAll([]string{"ext4", "virtio_blk", "loop"})
	// EEXIST = loaded; ENODEV = not applicable; EPERM is the error,
	// and the remaining modules are still tried.
	if want := []string{"ext4", "virtio_blk"}; !reflect.DeepEqual(got, want) || err == nil || !strings.Contains(err.Error(), "mbcache") {
		t.Errorf("LoadAll() = %v, %v; want %v and an mbcache error", got, err, want)
	}
}
