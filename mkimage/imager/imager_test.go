package imager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCompressAndList: the .xz decompresses to the image, compressing
// again gives the same bytes, and the os_list entry's sizes and sums are
// the files'.
func TestCompressAndList(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz (Debian xz-utils)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "t-pv-64MiB.img")
	data := bytes.Repeat([]byte("pantavisor\x00"), 3<<20) // > 2 xz blocks
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	xz, err := Compress(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(xz)
	out, err := exec.Command("xz", "-dc", xz).Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("xz -dc: %v, %d bytes, want the image's %d", err, len(out), len(data))
	}
	if _, err := Compress(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(xz); !bytes.Equal(first, again) {
		t.Error("compressing again gave other bytes")
	}
	e, err := NewEntry("n", "d", filepath.Base(xz), img, xz, 1700000000, []string{"pi4-64bit"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(ListName(img), e); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "os_list_t-pv-64MiB.json"))
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		OSList []map[string]any `json:"os_list"`
	}
	if err := json.Unmarshal(b, &l); err != nil || len(l.OSList) != 1 {
		t.Fatalf("os_list %s: %v", b, err)
	}
	got := l.OSList[0]
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	for k, want := range map[string]any{"extract_size": float64(len(data)), "extract_sha256": sum(data),
		"image_download_size": float64(len(first)), "image_download_sha256": sum(first), "release_date": "2023-11-14", "url": "t-pv-64MiB.img.xz"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}
