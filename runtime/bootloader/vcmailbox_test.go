package bootloader

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestVCMailboxLoadsModuleWhenMissing(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "vcio")
	errLoad := errors.New("no module")
	calls := 0
	m := VCMailbox{Device: dev, Load: func() error { calls++; return errLoad }}
	if err := m.SetTryboot(true); !errors.Is(err, errLoad) {
		t.Fatalf("SetTryboot without device: %v, want the load error", err)
	}
	if calls != 1 {
		t.Fatalf("Load called %d times, want 1", calls)
	}
	// A device that exists is used as is (a regular file: the ioctl fails).
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.SetTryboot(true); err == nil || errors.Is(err, errLoad) {
		t.Fatalf("SetTryboot on a plain file: %v, want an ioctl error", err)
	}
	if calls != 1 {
		t.Fatalf("Load called again with the device present")
	}
}

func TestVCMailboxRejectsBadMessage(t *testing.T) {
	m := VCMailbox{Device: filepath.Join(t.TempDir(), "vcio")}
	for _, msg := range [][]uint32{nil, {8, 0}, {16, 0, 0}} {
		if err := m.Property(msg); err == nil {
			t.Errorf("Property(%v): no error", msg)
		}
	}
}

func TestVcmailboxArgs(t *testing.T) {
	for _, args := range [][]string{nil, {"0x1", "nope"}, {"0x100000000"}, make([]string, maxMailboxWords+1)} {
		if err := Vcmailbox(context.Background(), args, nil, io.Discard, io.Discard); err == nil {
			t.Errorf("Vcmailbox(%q): no error", args)
		}
	}
}
