package boottest

import (
	"fmt"
	"io"
	"os"
	"os/exec"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// ReadUbootTxt reads /boot/uboot.txt (pv_rev, pv_try) from the storage
// partition at byte offset off of img, as the boot script imports it.
func ReadUbootTxt(img string, off int64) (bootenv.Vars, error) {
	out, err := exec.Command("debugfs", "-c", "-R", "cat /boot/uboot.txt", fmt.Sprintf("%s?offset=%d", img, off)).Output()
	if err != nil {
		return nil, fmt.Errorf("boottest: debugfs: %w", err)
	}
	return bootenv.ParseNul(out, bootenv.UbootTxtReadMax), nil
}

// WriteUbootTxt replaces /boot/uboot.txt with vars, as Pantavisor writes
// it (a 64 KiB NUL-separated env).
func WriteUbootTxt(img string, off int64, vars bootenv.Vars) error {
	b, err := bootenv.EncodeNul(vars, bootenv.UbootTxtSize, 0)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "pv-uboot-txt-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fs := fmt.Sprintf("%s?offset=%d", img, off)
	for _, req := range []string{"rm /boot/uboot.txt", "write " + f.Name() + " /boot/uboot.txt"} {
		// debugfs reports a failed request on stderr with status 0:
		// read the file back instead.
		if out, err := exec.Command("debugfs", "-w", "-R", req, fs).CombinedOutput(); err != nil {
			return fmt.Errorf("boottest: debugfs %s: %w: %s", req, err, out)
		}
	}
	got, err := ReadUbootTxt(img, off)
	if err != nil {
		return err
	}
	for _, v := range vars {
		if got.Get(v.Key) != v.Value {
			return fmt.Errorf("boottest: uboot.txt reads %q after the write, want %q", got, vars)
		}
	}
	return nil
}

// ReadPvEnv reads pv.env, the boot script's pv_trying latch, from the FAT
// boot partition (1-based index part) of img, nothing mounted. go-diskfs
// reads it: mtools refuses the FAT32 geometry go-diskfs writes ("too few
// sectors in FAT") that U-Boot and UEFI firmware read.
func ReadPvEnv(img string, part int) (bootenv.Vars, error) {
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("boottest: open %s: %w", img, err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(part)
	if err != nil {
		return nil, fmt.Errorf("boottest: partition %d: %w", part, err)
	}
	f, err := fs.OpenFile("/pv.env", os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("boottest: pv.env: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("boottest: pv.env: %w", err)
	}
	return bootenv.ParseNul(b, 0), nil
}
