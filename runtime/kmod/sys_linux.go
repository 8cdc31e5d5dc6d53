//go:build linux

package kmod

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// MODULE_INIT_COMPRESSED_FILE: the kernel decompresses .ko.xz/.ko.zst
// itself (Linux ≥ 5.17 with CONFIG_MODULE_DECOMPRESS).
const moduleInitCompressedFile = 4

// finit loads the module file path with params through finit_module(2).
func finit(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".gz") {
		flags = moduleInitCompressedFile
	}
	if err := unix.FinitModule(int(f.Fd()), params, flags); err != nil {
		return &os.PathError{Op: "finit_module", Path: path, Err: err}
	}
	return nil
}

// remove unloads a module with delete_module(2), without waiting.
func remove(name string) error {
	if err := unix.DeleteModule(name, unix.O_NONBLOCK); err != nil {
		return &os.PathError{Op: "delete_module", Path: name, Err: err}
	}
	return nil
}

func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }

// isNotApplicable: the module refuses to load where its hardware or CPU
// feature is missing (crc32c-intel without SSE4.2, kvm_intel without VMX).
func isNotApplicable(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO)
}

// kernelRelease returns uname -r.
func kernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", &os.SyscallError{Syscall: "uname", Err: err}
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
