//go:build linux

package embedded

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/crc32"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

const mib = 1 << 20

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "no %s (Debian fdisk, util-linux, e2fsprogs)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// sfdiskImage writes a sparse image of sizeMiB with an sfdisk script
// (sectors of lbs bytes: other than 512 through a loop device, as root).
func sfdiskImage(t *testing.T, sizeMiB int64, lbs int, script string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.Truncate(mustCreate(t, img), sizeMiB*mib); err != nil {
		t.Fatal(err)
	}
	withDisk(t, img, lbs, func(dev string) {
		cmd := exec.Command("sfdisk", "-q", dev)
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v: %s", err, out)
		}
	})
	return img
}

// withDisk calls fn with the image itself (512-byte sectors) or with a
// loop device of lbs-byte sectors on it (Debian 12's sfdisk has no
// --sector-size), detached after.
func withDisk(t *testing.T, img string, lbs int, fn func(dev string)) {
	t.Helper()
	if lbs == 512 {
		fn(img)
		return
	}
	if os.Getuid() != 0 {
		testenv.Skipf(t, "%d-byte sectors need a loop device (root)", lbs)
	}
	dev := strings.TrimSpace(run(t, "losetup", "-b", strconv.Itoa(lbs), "-f", "--show", img))
	defer exec.Command("losetup", "-d", dev).Run()
	fn(dev)
}

func mustCreate(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// sfdiskTable is what sfdisk --json reports.
type sfdiskTable struct {
	PartitionTable struct {
		Label   string `json:"label"`
		LastLBA int64  `json:"lastlba"`
		Parts   []struct {
			Start int64 `json:"start"`
			Size  int64 `json:"size"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// readBack lists an image (or disk) with sfdisk, failing on any warning
// (a PMBR size mismatch, a backup GPT not at the end or corrupt, …).
func readBack(t *testing.T, img string, lbs int) sfdiskTable {
	t.Helper()
	var tab sfdiskTable
	withDisk(t, img, lbs, func(dev string) {
		var stderr bytes.Buffer
		cmd := exec.Command("sfdisk", "--json", dev)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sfdisk --json: %v: %s", err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("sfdisk --json %s warns: %s", img, stderr.String())
		}
		if err := json.Unmarshal(out, &tab); err != nil {
			t.Fatal(err)
		}
		if out := run(t, "sfdisk", "--verify", dev); strings.Contains(out, "mismatch") || strings.Contains(out, "corrupt") {
			t.Errorf("sfdisk --verify: %s", out)
		}
	})
	return tab
}

// checkBackupGPT reads the backup GPT at the image's last block: header
// CRC, its own place, entries CRC and the same entries as the primary.
func checkBackupGPT(t *testing.T, f *os.File, lbs int64) {
	t.Helper()
	fi, _ := f.Stat()
	last := fi.Size()/lbs - 1
	hb := make([]byte, lbs)
	f.ReadAt(hb, last*lbs)
	h, err := parseGPTHeader(hb)
	if err != nil {
		t.Fatalf("backup GPT header: %v", err)
	}
	if h.my != uint64(last) || h.alt != 1 {
		t.Errorf("backup GPT my/alt = %d/%d, want %d/1", h.my, h.alt, last)
	}
	ents := make([]byte, int(h.entries*h.entrySize))
	f.ReadAt(ents, int64(h.entriesLBA)*lbs)
	if got := crc32.ChecksumIEEE(ents); got != h.entsCRC {
		t.Errorf("backup GPT entries CRC = %08x, want %08x", got, h.entsCRC)
	}
	p, pents, err := readGPT(f, lbs)
	if err != nil {
		t.Fatalf("primary GPT: %v", err)
	}
	if !bytes.Equal(ents, pents) || p.alt != uint64(last) || p.lastUsable != h.lastUsable {
		t.Errorf("backup GPT differs from the primary (alt %d, last usable %d/%d)", p.alt, p.lastUsable, h.lastUsable)
	}
}

func TestGrowTable(t *testing.T) {
	need(t, "sfdisk")
	for _, c := range []struct {
		name     string
		lbs      int
		sizeMiB  int64
		script   string
		grownMiB int64 // 0: the image is not enlarged
		pno      int
		wantErr  error
		// want is the partition's size after, in blocks (0: unchanged).
		want int64
	}{
		{name: "gpt last grows to the aligned end", lbs: 512, sizeMiB: 64, grownMiB: 200, pno: 2,
			script: "label: gpt\nstart=2048, size=16384\nstart=18432, size=110592\n", want: 199*2048 - 18432},
		{name: "gpt 4096-byte blocks", lbs: 4096, sizeMiB: 64, grownMiB: 200, pno: 2,
			script: "label: gpt\nstart=256, size=2048\nstart=2304, size=13824\n", want: 199*256 - 2304},
		{name: "gpt already at the aligned end", lbs: 512, sizeMiB: 64, pno: 2,
			script: "label: gpt\nstart=2048, size=16384\nstart=18432, size=110592\n"},
		{name: "gpt not last", lbs: 512, sizeMiB: 64, grownMiB: 200, pno: 1, wantErr: ErrNotLast,
			script: "label: gpt\nstart=2048, size=16384\nstart=18432, size=110592\n"},
		{name: "gpt entry 2 before entry 1 on the disk", lbs: 512, sizeMiB: 64, grownMiB: 200, pno: 2, wantErr: ErrNotLast,
			script: "label: gpt\n1: start=18432, size=110592\n2: start=2048, size=16384\n"},
		{name: "gpt entry 1 last on the disk", lbs: 512, sizeMiB: 64, grownMiB: 200, pno: 1,
			script: "label: gpt\n1: start=18432, size=110592\n2: start=2048, size=16384\n", want: 199*2048 - 18432},
		{name: "mbr last grows to the end", lbs: 512, sizeMiB: 64, grownMiB: 300, pno: 2,
			script: "label: dos\nstart=2048, size=16384, type=c, bootable\nstart=18432, size=110592, type=83\n", want: 300*2048 - 18432},
		{name: "mbr not last", lbs: 512, sizeMiB: 64, grownMiB: 300, pno: 2, wantErr: ErrNotLast,
			script: "label: dos\nstart=2048, size=16384\nstart=18432, size=65536\nstart=83968, size=20480\n"},
		{name: "mbr extended after", lbs: 512, sizeMiB: 64, grownMiB: 300, pno: 1, wantErr: ErrNotLast,
			script: "label: dos\nstart=2048, size=16384\nstart=18432, size=65536, type=5\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := sfdiskImage(t, c.sizeMiB, c.lbs, c.script)
			before := readBack(t, img, c.lbs)
			if c.grownMiB > 0 {
				os.Truncate(img, c.grownMiB*mib)
			}
			raw, _ := os.ReadFile(img)
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			lbs := int64(c.lbs)
			p := before.PartitionTable.Parts[c.pno-1]
			g, err := growTable(f, fi.Size(), lbs, c.pno, p.Start*lbs)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("growTable = %v, want %v", err, c.wantErr)
			}
			if g.From != p.Size*lbs {
				t.Errorf("growTable from = %d, want %d", g.From, p.Size*lbs)
			}
			if c.want == 0 {
				if after, _ := os.ReadFile(img); !bytes.Equal(after, raw) || g.Grew() {
					t.Errorf("growTable changed the image (%+v), want it untouched", g)
				}
				return
			}
			after := readBack(t, img, c.lbs)
			for i, q := range after.PartitionTable.Parts {
				want := before.PartitionTable.Parts[i]
				if i == c.pno-1 {
					want.Size = c.want
				}
				if q != want {
					t.Errorf("partition %d = %+v, want %+v", i+1, q, want)
				}
			}
			if g.To != c.want*lbs {
				t.Errorf("growTable to = %d, want %d", g.To, c.want*lbs)
			}
			if (p.Start*lbs+g.To)%mib != 0 {
				t.Errorf("grown partition ends at byte %d: not MiB-aligned", p.Start*lbs+g.To)
			}
			if after.PartitionTable.Label == "gpt" {
				checkBackupGPT(t, f, lbs)
				if want := fi.Size()/lbs - 34; lbs == 512 && after.PartitionTable.LastLBA != want {
					t.Errorf("last usable block = %d, want %d", after.PartitionTable.LastLBA, want)
				}
			}
			// a second run finds nothing to do
			raw, _ = os.ReadFile(img)
			if g, err := growTable(f, fi.Size(), lbs, c.pno, p.Start*lbs); err != nil || g.Grew() {
				t.Errorf("second growTable = %+v, %v; want no growth", g, err)
			}
			if again, _ := os.ReadFile(img); !bytes.Equal(again, raw) {
				t.Errorf("second growTable changed the image")
			}
		})
	}
}

func TestGrowMBRLogical(t *testing.T) {
	need(t, "sfdisk")
	img := sfdiskImage(t, 64, 512, "label: dos\nstart=2048, size=16384\nstart=18432, type=5\nstart=20480, type=83\n")
	os.Truncate(img, 128*mib)
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	defer f.Close()
	if _, err := growTable(f, 128*mib, 512, 5, 20480*512); err == nil {
		t.Errorf("growTable of a logical partition = nil, want an error")
	}
}

func TestAutogrowOff(t *testing.T) {
	for _, c := range []struct {
		cmdline string
		want    bool
	}{
		{"console=ttyS0 panic=2", false},
		{"pv_autogrow=off", true},
		{"quiet pv_autogrow=0 root=/dev/ram", true},
		{"PV_AUTOGROW=no", true},
		{"pv_autogrow=off pv_autogrow=on", false},
		{"pv_autogrow=on", false},
		{"pv_autogrowx=off", false},
	} {
		if got := AutogrowOff(c.cmdline); got != c.want {
			t.Errorf("AutogrowOff(%q) = %v, want %v", c.cmdline, got, c.want)
		}
	}
}

func TestParseExt4Size(t *testing.T) {
	b := make([]byte, 1024)
	b[0x38], b[0x39] = 0x53, 0xEF
	b[0x04], b[0x18] = 0x10, 2 // 16 blocks of 4 KiB
	b[0x150] = 1               // ignored without 64bit
	s, err := parseExt4Size(b)
	if err != nil || s.blocks != 16 || s.blockSize != 4096 || s.is64 {
		t.Errorf("parseExt4Size = %+v, %v; want 16 blocks of 4096", s, err)
	}
	b[0x60] = 0x80
	if s, _ := parseExt4Size(b); s.blocks != 1<<32|16 || !s.is64 {
		t.Errorf("parseExt4Size 64bit = %+v, want %d blocks", s, uint64(1<<32|16))
	}
	b[0x18] = 9
	if _, err := parseExt4Size(b); err == nil {
		t.Errorf("parseExt4Size of a 512 KiB block size = nil error")
	}
}

// loopDisk attaches an image with partitions and returns the loop device;
// the partitions are added with partx when the kernel has no parser for
// the table (some VM kernels).
func loopDisk(t *testing.T, img string) string {
	t.Helper()
	dev := strings.TrimSpace(run(t, "losetup", "-P", "-f", "--show", img))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	if _, err := os.Stat(dev + "p1"); err != nil {
		run(t, "partx", "-a", dev)
	}
	return dev
}

// statfsMiB is the file system size df reports, in MiB.
func statfsMiB(t *testing.T, dir string) int64 {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	return int64(s.Blocks) * s.Bsize >> 20
}

// canResizeFS tells whether this process may grow a mounted ext4 file
// system (CAP_SYS_RESOURCE; some sandboxes drop it, PID 1 has it).
func canResizeFS() bool {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}

// tableBytes are the blocks holding the MBR, the GPTs and their entries.
func tableBytes(t *testing.T, img string) []byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return append(b[:34*512:34*512], b[len(b)-33*512:]...)
}

// TestAutogrowLoop grows real partitions on loop devices (GPT and MBR): the
// table, the kernel's view, the mounted ext4 file system; a second boot
// (detach, attach again) does nothing, pv_autogrow=off leaves all as is.
func TestAutogrowLoop(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Skipf(t, "needs root (loop devices, mount)")
	}
	need(t, "sfdisk", "losetup", "partx", "mkfs.ext4", "e2fsck", "blkid")
	resize := canResizeFS()
	for _, c := range []struct {
		name   string
		script string
		off    bool
		// wantMiB is the storage partition's size after (54: unchanged).
		wantMiB int64
	}{
		{name: "gpt", script: "label: gpt\nstart=2048, size=16384\nstart=18432, size=110592\n", wantMiB: 299 - 9},
		{name: "mbr", script: "label: dos\nstart=2048, size=16384, type=ef, bootable\nstart=18432, size=110592, type=83\n", wantMiB: 300 - 9},
		{name: "off", script: "label: gpt\nstart=2048, size=16384\nstart=18432, size=110592\n", off: true, wantMiB: 54},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := sfdiskImage(t, 64, 512, c.script)
			dev := loopDisk(t, img)
			run(t, "mkfs.ext4", "-q", "-b", "4096", "-L", "root", dev+"p2")
			run(t, "losetup", "-d", dev)
			os.Truncate(img, 300*mib)
			table := tableBytes(t, img)

			// first boot
			dev = loopDisk(t, img)
			part := dev + "p2"
			var logs bytes.Buffer
			a := &Autogrow{Dev: part, Off: c.off, Log: slog.New(slog.NewTextHandler(&logs, nil))}
			a.Partition()
			dir := t.TempDir()
			if err := (Mount{Source: part, Target: dir, FSType: "ext4"}).Do(); err != nil {
				t.Fatal(err)
			}
			a.FileSystem(dir)
			got := statfsMiB(t, dir)
			if err := unix.Unmount(dir, 0); err != nil {
				t.Fatal(err)
			}
			t.Logf("first boot:\n%s", logs.String())
			if n, _ := readSysInt(filepath.Join(sysBlock, filepath.Base(part), "size")); n != c.wantMiB*2048 {
				t.Errorf("kernel partition size = %d blocks, want %d", n, c.wantMiB*2048)
			}
			want := "storage: grew " + part + " from 54 MiB to " + strconv.FormatInt(c.wantMiB, 10) + " MiB"
			switch {
			case c.off:
				if !bytes.Equal(tableBytes(t, img), table) || got > 54 {
					t.Errorf("pv_autogrow=off changed the table or the file system (%d MiB)", got)
				}
				if strings.Contains(logs.String(), "grew") {
					t.Errorf("pv_autogrow=off logged a growth:\n%s", logs.String())
				}
				return
			case !resize:
				t.Log("no CAP_SYS_RESOURCE here: the partition grows, the file system cannot (EXT4_IOC_RESIZE_FS: EPERM)")
				want = "storage: grew partition " + part + " from 54 MiB to " + strconv.FormatInt(c.wantMiB, 10) + " MiB"
			default:
				if strings.Contains(logs.String(), "level=WARN") {
					t.Errorf("autogrow warned")
				}
				// df counts the blocks less the file system's overhead
				if got < c.wantMiB*9/10 || got > c.wantMiB {
					t.Errorf("statfs size = %d MiB, want about %d", got, c.wantMiB)
				}
			}
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q", want)
			}
			run(t, "e2fsck", "-fn", part)
			if out := run(t, "blkid", "-p", "-s", "LABEL", "-o", "value", part); strings.TrimSpace(out) != "root" {
				t.Errorf("blkid label = %q, want root", out)
			}
			run(t, "losetup", "-d", dev)

			// the table as the next boot reads it
			tab := readBack(t, img, 512)
			if s := tab.PartitionTable.Parts[1].Size; s != c.wantMiB*2048 {
				t.Errorf("table size of p2 = %d blocks, want %d", s, c.wantMiB*2048)
			}
			if tab.PartitionTable.Label == "gpt" {
				f, _ := os.Open(img)
				checkBackupGPT(t, f, 512)
				f.Close()
			}

			// second boot: nothing to do
			table = tableBytes(t, img)
			dev = loopDisk(t, img)
			part = dev + "p2"
			logs.Reset()
			a = &Autogrow{Dev: part, Log: slog.New(slog.NewTextHandler(&logs, nil))}
			a.Partition()
			if err := (Mount{Source: part, Target: dir, FSType: "ext4"}).Do(); err != nil {
				t.Fatal(err)
			}
			a.FileSystem(dir)
			again := statfsMiB(t, dir)
			unix.Unmount(dir, 0)
			t.Logf("second boot:\n%s", logs.String())
			if strings.Contains(logs.String(), "grew") || (resize && logs.Len() > 0) {
				t.Errorf("second boot logged:\n%s", logs.String())
			}
			if again != got {
				t.Errorf("second boot: statfs size = %d MiB, want %d as before", again, got)
			}
			run(t, "losetup", "-d", dev)
			if !bytes.Equal(tableBytes(t, img), table) {
				t.Errorf("second boot changed the partition table")
			}
		})
	}
}

// TestAutogrowNotLast leaves a storage partition with another after it.
func TestAutogrowNotLast(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Skipf(t, "needs root (loop devices)")
	}
	need(t, "sfdisk", "losetup", "partx")
	img := sfdiskImage(t, 64, 512, "label: gpt\nstart=2048, size=16384\nstart=18432, size=65536\nstart=83968, size=20480\n")
	os.Truncate(img, 300*mib)
	raw, _ := os.ReadFile(img)
	dev := loopDisk(t, img)
	g, err := GrowPartition(dev + "p2")
	if !errors.Is(err, ErrNotLast) || g.Grew() {
		t.Errorf("GrowPartition(p2) = %+v, %v; want ErrNotLast", g, err)
	}
	if g, err := GrowPartition(dev); err != nil || g.Grew() {
		t.Errorf("GrowPartition(whole disk) = %+v, %v; want nothing", g, err)
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(after, raw) {
		t.Errorf("the disk changed")
	}
}
