package disk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckRegions(t *testing.T) {
	l, err := Plan(loadRecipe(t, 128)) // gpt: bios-boot at 1 MiB, esp at 2 MiB, storage
	if err != nil {
		t.Fatal(err)
	}
	bios, esp := l.PartByName("bios"), l.PartByName("esp")
	if bios == nil || esp == nil || l.PartByName("nope") != nil {
		t.Fatalf("PartByName: bios %v esp %v", bios, esp)
	}
	ok := []Region{{"mbr code", 0, make([]byte, 440)}, {"sig", 510, []byte{0x55, 0xaa}}, {"core", bios.Start, make([]byte, 4096)}, {"gap", 34 * 512, make([]byte, 512)}}
	if err := l.CheckRegions(ok); err != nil {
		t.Errorf("CheckRegions(boot code, core.img, gap) = %v", err)
	}
	for name, bad := range map[string][]Region{
		"partition table": {{"x", 400, make([]byte, 100)}},
		"gpt":             {{"x", 1024, make([]byte, 8)}},
		"fat":             {{"x", esp.Start + 4096, make([]byte, 8)}},
		"backup gpt":      {{"x", l.Size - 512, make([]byte, 8)}},
		"each other":      {{"a", bios.Start, make([]byte, 1024)}, {"b", bios.Start + 512, make([]byte, 8)}},
	} {
		if err := l.CheckRegions(bad); !errors.Is(err, ErrOverlap) {
			t.Errorf("CheckRegions(%s) = %v, want ErrOverlap", name, err)
		}
	}
	if err := l.CheckRegions([]Region{{"x", l.Size - 4, make([]byte, 8)}}); err == nil {
		t.Error("CheckRegions(past the end) = nil")
	}
	img := filepath.Join(t.TempDir(), "img")
	if err := Create(img, l, "seed"); err != nil {
		t.Fatal(err)
	}
	if err := WriteRegions(img, l, []Region{{"core", bios.Start, []byte("core")}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, 4)
	if _, err := f.ReadAt(got, bios.Start); err != nil || !bytes.Equal(got, []byte("core")) {
		t.Errorf("region read back %q, %v", got, err)
	}
	if err := WriteRegions(img, l, []Region{{"x", esp.Start, []byte("x")}}); !errors.Is(err, ErrOverlap) {
		t.Errorf("WriteRegions(into the esp) = %v, want ErrOverlap", err)
	}
}
