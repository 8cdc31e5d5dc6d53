package devmapper

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestBuffer(t *testing.T) {
	b, err := buffer("versatile", readOnlyFlag, []Target{{Length: 4096, Type: "crypt", Params: "aes-cbc-essiv:sha256 00 0 7:0 0"}})
	if err != nil {
		t.Fatal(err)
	}
	ne := binary.NativeEndian
	if ne.Uint32(b[0:]) != 4 || ne.Uint32(b[12:]) != uint32(len(b)) || ne.Uint32(b[16:]) != ioctlSize || ne.Uint32(b[20:]) != 1 || ne.Uint32(b[28:]) != readOnlyFlag {
		t.Errorf("dm_ioctl header = %v", b[:32])
	}
	if !bytes.HasPrefix(b[48:], []byte("versatile\x00")) {
		t.Errorf("name = %q", b[48:60])
	}
	spec := b[ioctlSize:]
	if ne.Uint64(spec[8:]) != 4096 || !bytes.HasPrefix(spec[24:], []byte("crypt\x00")) || !bytes.HasPrefix(spec[specSize:], []byte("aes-cbc-essiv:sha256 00 0 7:0 0\x00")) {
		t.Errorf("target spec = %q", spec[:80])
	}
	if next := ne.Uint32(spec[20:]); next%8 != 0 || next < specSize+32 {
		t.Errorf("spec next = %d, want 8-aligned past the params", next)
	}
	if cmd(devCreate) != 0xc138fd03 {
		t.Errorf("DM_DEV_CREATE = %#x, want 0xc138fd03", cmd(devCreate))
	}
	if _, err := buffer(strings.Repeat("n", 128), 0, nil); !errors.Is(err, ErrBadName) {
		t.Errorf("buffer(long name) error = %v", err)
	}
	if _, err := buffer("x", 0, []Target{{Type: strings.Repeat("t", 16)}}); !errors.Is(err, ErrBadName) {
		t.Errorf("buffer(long type) error = %v", err)
	}
}
