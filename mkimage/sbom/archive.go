package sbom

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/initrd"
	"github.com/u-root/u-root/pkg/cpio"
)

// Member is one regular file inside an archive part (an initrd).
type Member struct {
	Path         string // absolute inside the archive: /usr/bin/x
	SHA256, SHA1 string
	Size         int64
}

// maxArchive bounds what ReadArchive decompresses: initrds are tens of
// MiB, and an archive that claims more is not one we built.
const maxArchive = 1 << 30

// ReadArchive lists the regular files of a newc cpio archive, plain or
// or compressed in a format of mkimage/initrd (the initrd and its addons).
// Hard links to one file are listed under each name.
func ReadArchive(data []byte) ([]Member, error) {
	raw, err := decompress(data)
	if err != nil {
		return nil, err
	}
	return readCPIO(raw)
}

// DescribeArchive records in the object cache cache (Input.Cache) what
// Generate says about the archive file (an initrd or addon the builder
// just wrote), whose uncompressed newc data is raw: Generate does not
// decompress it again.
func DescribeArchive(cache, archive string, raw []byte) error {
	if cache == "" {
		return nil
	}
	sha, s1, err := fileSums(archive)
	if err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	ms, err := readCPIO(raw)
	if err != nil {
		return err
	}
	return writeObjectInfo(cache, sha, &objectInfo{SHA1: s1, Kind: "cpio", Members: ms})
}

// readCPIO lists the regular files of a newc archive (ReadArchive).
func readCPIO(raw []byte) ([]Member, error) {
	if !bytes.HasPrefix(raw, []byte("070701")) {
		return nil, ErrNotArchive
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("sbom: cpio: %w", err)
	}
	var out []Member
	byIno := map[uint64]Member{} // newc stores a hard-linked file's data once
	for _, r := range recs {
		if r.Mode&cpio.S_IFMT != cpio.S_IFREG {
			continue
		}
		body, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if err != nil {
			return nil, fmt.Errorf("sbom: cpio %s: %w", r.Name, err)
		}
		m := Member{Path: "/" + r.Name, Size: int64(len(body))}
		if len(body) == 0 && r.NLink > 1 {
			if prev, ok := byIno[r.Ino]; ok {
				m.SHA256, m.Size = prev.SHA256, prev.Size
			}
		}
		if len(body) == 0 && r.NLink > 1 {
			if prev, ok := byIno[r.Ino]; ok {
				m.SHA1 = prev.SHA1
			}
		}
		if m.SHA256 == "" {
			sum, s1 := sha256.Sum256(body), sha1.Sum(body)
			m.SHA256, m.SHA1 = hex.EncodeToString(sum[:]), hex.EncodeToString(s1[:])
			byIno[r.Ino] = m
		}
		out = append(out, m)
	}
	return out, nil
}

// ErrNotArchive: the data decompresses to something other than a newc
// cpio archive (rpiab's gzipped boot FAT image, bsp/pantavisor-rpi.img.gz).
var ErrNotArchive = errors.New("sbom: not a cpio archive")

func decompress(data []byte) ([]byte, error) {
	raw, err := initrd.Decompress(data, maxArchive)
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	return raw, nil
}

// ReadSquashfs lists the regular files of a squashfs image (unsquashfs
// extracts it into a temporary directory).
func ReadSquashfs(ctx context.Context, image string) ([]Member, error) {
	tmp, err := os.MkdirTemp("", "sbom-squashfs-")
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "root")
	out, err := exec.CommandContext(ctx, "unsquashfs", "-n", "-no-xattrs", "-d", dir, image).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("sbom: unsquashfs %s: %w: %s", filepath.Base(image), err, strings.TrimSpace(string(out)))
	}
	ms, err := listTree(dir)
	if err != nil {
		return nil, fmt.Errorf("sbom: %s: %w", filepath.Base(image), err)
	}
	return ms, nil
}

// listTree lists the regular files below dir, as members of a volume
// made from it or unpacked into it.
func listTree(dir string) ([]Member, error) {
	var ms []Member
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		s256, s1, err := fileSums(p)
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		ms = append(ms, Member{Path: "/" + filepath.ToSlash(rel), SHA256: s256, SHA1: s1, Size: fi.Size()})
		return nil
	})
	return ms, err
}

// DescribeSquashfs records in the object cache cache (Input.Cache) what
// Generate says about the squashfs image, which mksquashfs just made
// from the directory dir: its files are read from dir, so Generate does
// not unpack the image again, and the builder does this beside its other
// stages. A volume Generate would not list (maxVolume) is left alone.
func DescribeSquashfs(cache, image, dir string) error {
	if cache == "" || fileSize(image) > maxVolume {
		return nil
	}
	sha, s1, err := fileSums(image)
	if err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	ms, err := listTree(dir)
	if err != nil {
		return fmt.Errorf("sbom: %s: %w", dir, err)
	}
	return writeObjectInfo(cache, sha, &objectInfo{SHA1: s1, Kind: "squashfs", Members: ms})
}
