package rootfs

import (
	"bytes"
	"testing"
)

func TestHelper(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping go build in -short mode")
	}
	dir := t.TempDir()
	bin, err := Helper(dir)
	if err != nil {
		t.Fatalf("Helper() error = %v", err)
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		t.Errorf("Helper() = %d bytes without an ELF header", len(bin))
	}
	again, err := Helper(dir)
	if err != nil || !bytes.Equal(again, bin) {
		t.Errorf("cached Helper() = %d bytes, %v, want the same binary", len(again), err)
	}
}
