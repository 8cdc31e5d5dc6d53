package rootfs

import (
	"bytes"
	"testing"
)

func TestHelper(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping go build in -short mode")
	}
	bin, err := Helper()
	if err != nil {
		t.Fatalf("Helper() error = %v", err)
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		t.Errorf("Helper() = %d bytes without an ELF header", len(bin))
	}
}
