package bootloader

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// ubootEnvImage is a valid U-Boot env partition (CRC32 + entries).
func ubootEnvImage(size int, entries string) []byte {
	data := make([]byte, size-4)
	copy(data, entries)
	b := binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(data))
	return append(b, data...)
}

// fit is a minimal flattened device tree header of the given total size.
func fit(size int, fill byte) []byte {
	b := bytes.Repeat([]byte{fill}, size)
	binary.BigEndian.PutUint32(b, 0xd00dfeed)
	binary.BigEndian.PutUint32(b[4:], uint32(size))
	return b
}

func TestUbootAB(t *testing.T) {
	if _, err := exec.LookPath("fw_setenv"); err != nil {
		testenv.Skipf(t, "fw_setenv not installed (Debian libubootenv-tool)")
	}
	dir := t.TempDir()
	proc := fakeMTD(t, dir, map[string]int64{"fitA": 0x10000, "fitB": 0x10000, "u-env": 0x4000})
	os.WriteFile(filepath.Join(dir, "u-env.mtd"), ubootEnvImage(0x4000, "pv_rev=0\x00\x00"), 0o644)
	// factory: fitA holds revision 0
	fitA := filepath.Join(dir, "fitA.mtd")
	a := &MTD{Path: fitA, Size: 0x10000}
	if err := a.Write(append(fitHeader("0"), fit(300, 1)...)); err != nil {
		t.Fatal(err)
	}
	o := Options{Type: "uboot-ab", Storage: dir, ProcMTD: proc, UbootAB: UbootABOptions{
		EnvName: "u-env", EnvSize: 0x4000, FWEnvConfig: filepath.Join(dir, "fw_env.config")}}
	bl, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if bl.Done() != "0" {
		t.Fatalf("pv_rev = %q, want 0", bl.Done())
	}

	trail := func(rev string, f []byte) string {
		d := filepath.Join(dir, "trails", rev)
		os.MkdirAll(filepath.Join(d, ".pv"), 0o755)
		os.WriteFile(filepath.Join(d, ".pv", "pantavisor.fit"), f, 0o644)
		return d
	}
	// a new kernel goes to the inactive partition and needs a reboot
	force, err := bl.Install("1", trail("1", fit(400, 2)))
	if err != nil || !force {
		t.Fatalf("Install(new FIT) = %v, %v; want a forced reboot", force, err)
	}
	b := &MTD{Path: filepath.Join(dir, "fitB.mtd"), Size: 0x10000}
	if rev, body, _ := fitRev(b); rev != "1" || !bytes.Equal(body[:400], fit(400, 2)) {
		t.Errorf("fitB = rev %q", rev)
	}
	if v, _ := bl.Env().Get(VarTry); v != "1" {
		t.Errorf("pv_try = %q in the U-Boot env, want 1", v)
	}
	bl.PreCommit("1")
	// same FIT again: only the active header moves, no reboot
	force, err = bl.Install("2", trail("2", fit(400, 2)))
	if err != nil || force {
		t.Fatalf("Install(same FIT) = %v, %v; want no reboot", force, err)
	}
	if rev, body, _ := fitRev(b); rev != "2" || !bytes.Equal(body[:400], fit(400, 2)) {
		t.Errorf("fitB after header rename = rev %q", rev)
	}
	if rev, _, _ := fitRev(a); rev != "0" {
		t.Errorf("fitA touched: rev %q", rev)
	}
	if _, err := bl.Install("3", trail("3", fit(0x20000, 3))); err == nil {
		t.Error("a FIT larger than the partition was accepted")
	}
}
