package disk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"golang.org/x/sys/unix"
)

var gptTypes = map[string]gpt.Type{
	"bios-boot": gpt.BIOSBoot,
	"esp":       gpt.EFISystemPartition,
	"boot":      gpt.MicrosoftBasicData,
	"storage":   gpt.LinuxFilesystem,
	"raw":       gpt.LinuxFilesystem,
}

var mbrTypes = map[string]mbr.Type{
	"esp":     mbr.EFISystem,
	"boot":    mbr.Fat32LBA,
	"storage": mbr.Linux,
	"raw":     mbr.Linux,
}

// Create writes a sparse image file of the layout's size with its
// partition table. seed makes the GUIDs / disk signature deterministic.
func Create(imgPath string, l Layout, seed string) error {
	if err := os.Remove(imgPath); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("disk: %w", err)
	}
	d, err := diskfs.Create(imgPath, l.Size, diskfs.SectorSizeDefault)
	if err != nil {
		return fmt.Errorf("disk: create %s: %w", imgPath, err)
	}
	defer d.Close()
	switch l.Table {
	case "gpt":
		t := &gpt.Table{LogicalSectorSize: sector, PhysicalSectorSize: sector, ProtectiveMBR: true, GUID: GUID(seed, "disk")}
		for _, p := range l.Parts {
			t.Partitions = append(t.Partitions, &gpt.Partition{
				Start: uint64(p.Start / sector), End: uint64((p.Start+p.Size)/sector - 1), Size: uint64(p.Size),
				Index: p.Index, Type: gptTypes[p.Role], Name: p.Name, GUID: GUID(seed, "part-"+p.Name),
			})
		}
		if err := d.Partition(t); err != nil {
			return fmt.Errorf("disk: gpt: %w", err)
		}
	case "mbr":
		t := &mbr.Table{LogicalSectorSize: sector, PhysicalSectorSize: sector}
		for i, p := range l.Parts {
			t.Partitions = append(t.Partitions, &mbr.Partition{
				Bootable: i == 0 && (p.Role == "boot" || p.Role == "esp"),
				Start:    uint32(p.Start / sector), Size: uint32(p.Size / sector), Type: mbrTypes[p.Role],
			})
		}
		if err := d.Partition(t); err != nil {
			return fmt.Errorf("disk: mbr: %w", err)
		}
	default:
		return fmt.Errorf("disk: unknown table %q", l.Table)
	}
	return nil
}

// WriteFAT formats partition p of the image as FAT (reproducibly, dates
// from SOURCE_DATE_EPOCH) and writes files (path → content) into it.
func WriteFAT(imgPath string, p *Placed, files map[string][]byte) error {
	d, err := diskfs.Open(imgPath, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		return fmt.Errorf("disk: open %s: %w", imgPath, err)
	}
	defer d.Close()
	fst := filesystem.TypeFat32
	if p.FS == "fat16" {
		fst = filesystem.TypeFat16
	}
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: p.Index, FSType: fst, VolumeLabel: p.Label, Reproducible: true})
	if err != nil {
		return fmt.Errorf("disk: format %s: %w", p.Name, err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	made := map[string]bool{}
	for _, n := range names {
		if dir := path.Dir(n); dir != "/" && !made[dir] {
			if err := fs.Mkdir(dir); err != nil {
				return fmt.Errorf("disk: %s: mkdir %s: %w", p.Name, dir, err)
			}
			made[dir] = true
		}
		f, err := fs.OpenFile(n, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("disk: %s: create %s: %w", p.Name, n, err)
		}
		// One Write per file: go-diskfs rewrites the FAT on every allocation.
		if _, err := f.Write(files[n]); err != nil {
			f.Close()
			return fmt.Errorf("disk: %s: write %s: %w", p.Name, n, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("disk: %s: close %s: %w", p.Name, n, err)
		}
	}
	return nil
}

// Ext4Options configure MakeExt4.
type Ext4Options struct {
	// Dir is the staged tree copied into the file system (mkfs.ext4 -d).
	Dir   string
	Label string
	Size  int64
	// UUID and HashSeed make the file system reproducible.
	UUID, HashSeed string
	// Epoch is the time stamped into the file system (E2FSPROGS_FAKE_TIME).
	Epoch int64
	// NoMetadataCsum drops metadata_csum (U-Boot must write this ext4).
	NoMetadataCsum bool
	// Offset, when not 0, makes the file system in place inside the
	// existing file out (a disk image) at this byte offset, instead of
	// creating out: no temporary file system image to copy. The region
	// must be fresh (zero), as it is right after Create.
	Offset int64
}

// MakeExt4 creates out as an ext4 image of Size bytes from Dir (or
// writes it at Offset into the image out). The feature set is one GRUB
// 2.06 and edk2 can read (no metadata_csum_seed, no orphan_file); hard
// links in Dir are kept.
func MakeExt4(ctx context.Context, out string, o Ext4Options) error {
	feat := "^metadata_csum_seed,^orphan_file"
	if o.NoMetadataCsum {
		feat += ",^metadata_csum"
	}
	if err := ClampTimes(o.Dir, o.Epoch); err != nil {
		return err
	}
	// nodiscard: on an existing image mke2fs would punch the partition
	// and mark the inode tables zeroed; a fresh file (and the image as
	// it always was) leaves them to the kernel's lazy init.
	ext := "hash_seed=" + o.HashSeed + ",root_owner=0:0,nodiscard"
	dev := out
	if o.Offset != 0 {
		if _, err := os.Stat(out); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
		ext += ",offset=" + strconv.FormatInt(o.Offset, 10)
		// e2fsprogs' unix I/O takes the offset as an option of the name
		dev = out + "?offset=" + strconv.FormatInt(o.Offset, 10)
	} else {
		os.Remove(out)
	}
	args := []string{"-q", "-F", "-t", "ext4", "-b", "4096", "-L", o.Label, "-U", o.UUID,
		"-E", ext, "-O", feat, "-d", o.Dir, out,
		strconv.FormatInt(o.Size/1024, 10) + "k"}
	cmd := exec.CommandContext(ctx, "mkfs.ext4", args...)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(o.Epoch, 10), "SOURCE_DATE_EPOCH="+strconv.FormatInt(o.Epoch, 10), "MKE2FS_CONFIG=/etc/mke2fs.conf")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("disk: mkfs.ext4: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return fixCtimes(ctx, dev, o.Dir, o.Epoch)
}

// fixCtimes sets the change and access times of every staged path to
// epoch:
// mkfs.ext4 -d (e2fsprogs < 1.47.1) copies st_ctime from the staged files,
// and ctime cannot be set on the host, so it is rewritten with debugfs.
func fixCtimes(ctx context.Context, img, dir string, epoch int64) error {
	var script strings.Builder
	for _, f := range []string{"ctime", "atime"} {
		fmt.Fprintf(&script, "set_inode_field / %s @%d\n", f, epoch)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if strings.ContainsAny(rel, " \"\n") {
			return fmt.Errorf("disk: %q: spaces and quotes are not supported in storage paths", rel)
		}
		// atime too: reading the staged tree (relatime) moves it.
		for _, f := range []string{"ctime", "atime"} {
			fmt.Fprintf(&script, "set_inode_field /%s %s @%d\n", filepath.ToSlash(rel), f, epoch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "debugfs", "-w", "-f", "-", img)
	cmd.Stdin = strings.NewReader(script.String())
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(epoch, 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("disk: debugfs: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CopyInto copies the file src into the image at byte offset off, skipping
// all-zero blocks so the image stays sparse; the target region must be
// fresh (zero), as it is right after Create.
func CopyInto(imgPath string, off int64, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(imgPath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	pos := off
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if !bytes.Equal(buf[:n], zero[:n]) {
				if _, werr := out.WriteAt(buf[:n], pos); werr != nil {
					return fmt.Errorf("disk: write %s: %w", imgPath, werr)
				}
			}
			pos += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("disk: read %s: %w", src, err)
		}
	}
	return out.Sync()
}

// ClampTimes sets the access and modification times of every file,
// directory and symlink below dir to epoch: mkfs.ext4 -d copies them from
// the staged tree into the file system.
func ClampTimes(dir string, epoch int64) error {
	ts := []unix.Timespec{unix.NsecToTimespec(epoch * 1e9), unix.NsecToTimespec(epoch * 1e9)}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("disk: clamp times of %s: %w", p, err)
		}
		return nil
	})
}
