// Package imager makes what Raspberry Pi Imager opens: the image
// compressed with xz (its "Use custom" file) and an os_list JSON for its
// custom repository option (--repo), whose sizes and sha256 sums are
// those of the files beside it.
package imager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// BlockSize is the xz block size: with a fixed block size, xz's
// multithreaded output depends on the input alone, not on the number of
// threads, so the .img.xz is reproducible on any machine.
const BlockSize = "16MiB"

// Compress writes img.xz beside img with `xz -T0 -1` (all CPUs; -1:
// LZMA2 fast mode, as most of a Pantavisor image is already compressed
// squashfs, where the slower presets gain little); the
// pure-Go xz encoders are single-threaded and several times slower on
// a 1 GiB image.
func Compress(ctx context.Context, img string) (string, error) {
	out := img + ".xz"
	tmp := out + ".tmp"
	in, err := os.Open(img)
	if err != nil {
		return "", fmt.Errorf("imager: %w", err)
	}
	defer in.Close()
	f, err := os.Create(tmp)
	if err != nil {
		return "", fmt.Errorf("imager: %w", err)
	}
	defer os.Remove(tmp) // after a failure
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "xz", "-T0", "-1", "--check=crc64", "--block-size="+BlockSize, "-c")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, f, &stderr
	if err := cmd.Run(); err != nil {
		f.Close()
		return "", fmt.Errorf("imager: xz %s: %w: %s", img, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("imager: %w", err)
	}
	return out, os.Rename(tmp, out)
}

// Entry is one os_list entry (Raspberry Pi Imager's repository format).
type Entry struct {
	Name                string   `json:"name"`
	Description         string   `json:"description"`
	URL                 string   `json:"url"`
	ExtractSize         int64    `json:"extract_size"`
	ExtractSHA256       string   `json:"extract_sha256"`
	ImageDownloadSize   int64    `json:"image_download_size"`
	ImageDownloadSHA256 string   `json:"image_download_sha256"`
	ReleaseDate         string   `json:"release_date"`
	Devices             []string `json:"devices"`
}

// OSList is the repository file: {"os_list": [...]}.
type OSList struct {
	OSList []Entry `json:"os_list"`
}

// NewEntry describes the image img and its compressed download xz; url
// is where the download is published (a file name resolves next to the
// os_list file); the release date is the build's SOURCE_DATE_EPOCH.
func NewEntry(name, description, url, img, xz string, epoch int64, devices []string) (Entry, error) {
	e := Entry{Name: name, Description: description, URL: url, Devices: devices,
		ReleaseDate: time.Unix(epoch, 0).UTC().Format(time.DateOnly)}
	var err error
	if e.ExtractSize, e.ExtractSHA256, err = sum(img); err != nil {
		return Entry{}, err
	}
	if e.ImageDownloadSize, e.ImageDownloadSHA256, err = sum(xz); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// Write writes the os_list JSON of entries to path.
func Write(path string, entries ...Entry) error {
	b, err := json.MarshalIndent(OSList{OSList: entries}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("imager: %w", err)
	}
	return os.Rename(tmp, path)
}

// ListName is the os_list file name for an image: <image>.json beside it
// (os_list_imagingutility_<target>.json would be Imager's own naming).
func ListName(img string) string {
	return filepath.Join(filepath.Dir(img), "os_list_"+trimExt(filepath.Base(img))+".json")
}

func trimExt(s string) string { return s[:len(s)-len(filepath.Ext(s))] }

func sum(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", fmt.Errorf("imager: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("imager: %s: %w", p, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
