package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// fakeExt4 returns a device image with an ext4 superblock carrying label.
func fakeExt4(label string) []byte {
	b := make([]byte, 4096)
	binary.LittleEndian.PutUint16(b[sbOffset+sbMagicOff:], ext4SuperMag)
	copy(b[sbOffset+sbLabelOff:], label)
	copy(b[sbOffset+sbUUIDOff:], []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8})
	return b
}

func TestReadSuperblock(t *testing.T) {
	sb, err := ReadSuperblock(bytes.NewReader(fakeExt4("root")))
	if err != nil {
		t.Fatal(err)
	}
	if sb.Label != "root" || sb.UUID != "12345678-9abc-def0-0102-030405060708" {
		t.Errorf("ReadSuperblock() = %+v, want label root and the uuid", sb)
	}
	if _, err := ReadSuperblock(bytes.NewReader(make([]byte, 4096))); err == nil {
		t.Errorf("ReadSuperblock(zeros) = nil error")
	}
	if _, err := ReadSuperblock(bytes.NewReader(nil)); err == nil {
		t.Errorf("ReadSuperblock(empty) = nil error")
	}
}

// TestReadSuperblockMkfs checks against a file system made by mkfs.ext4.
func TestReadSuperblockMkfs(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		testenv.Skipf(t, "no mkfs.ext4 (Debian e2fsprogs)")
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "pvroot", "-U", "0e4f9b2a-1111-2222-3333-444455556666", img, "2M").CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, err := ReadSuperblock(f)
	if err != nil || sb.Label != "pvroot" || sb.UUID != "0e4f9b2a-1111-2222-3333-444455556666" {
		t.Errorf("ReadSuperblock(mkfs) = %+v, %v", sb, err)
	}
}

func fakeBlock(t *testing.T) (sys, dev string) {
	t.Helper()
	root := t.TempDir()
	sys, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	for name, data := range map[string][]byte{
		"vda":  make([]byte, 4096),
		"vda1": make([]byte, 4096),
		"vda3": fakeExt4("root"),
		"vdb":  fakeExt4("other"),
		"sr0":  nil,
	} {
		if err := os.MkdirAll(filepath.Join(sys, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if data == nil {
			continue
		}
		if err := os.MkdirAll(dev, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dev, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return sys, dev
}

func TestFindDevice(t *testing.T) {
	sys, dev := fakeBlock(t)
	for _, tt := range []struct {
		spec, want string
		err        error
	}{
		{"LABEL=root", filepath.Join(dev, "vda3"), nil},
		{"LABEL=other", filepath.Join(dev, "vdb"), nil},
		{"UUID=12345678-9ABC-def0-0102-030405060708", filepath.Join(dev, "vdb"), nil},
		{"LABEL=nope", "", ErrNoDevice},
		{filepath.Join(dev, "vda1"), filepath.Join(dev, "vda1"), nil},
		{"/dev/does-not-exist", "", ErrNoDevice},
	} {
		got, err := findDevice(tt.spec, sys, dev)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("findDevice(%q) = %q, %v, want %q, %v", tt.spec, got, err, tt.want, tt.err)
		}
	}
	if _, err := findDevice("PARTUUID=x", sys, dev); err == nil || errors.Is(err, ErrNoDevice) {
		t.Errorf("findDevice(PARTUUID) = %v, want a usage error", err)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	dev, err := waitFor(context.Background(), time.Second, time.Millisecond, func() (string, error) {
		if n++; n < 3 {
			return "", ErrNoDevice
		}
		return "/dev/vda3", nil
	})
	if dev != "/dev/vda3" || err != nil || n != 3 {
		t.Errorf("waitFor() = %q, %v after %d tries, want /dev/vda3 after 3", dev, err, n)
	}
	_, err = waitFor(context.Background(), 20*time.Millisecond, time.Millisecond, func() (string, error) { return "", ErrNoDevice })
	if !errors.Is(err, ErrNoDevice) {
		t.Errorf("waitFor(never) = %v, want ErrNoDevice", err)
	}
}

func TestMountTmpfs(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Skipf(t, "needs root")
	}
	target := filepath.Join(t.TempDir(), "a", "b")
	m := Mount{Source: "tmpfs", Target: target, FSType: "tmpfs", Data: "size=1m"}
	if err := m.Do(); err != nil {
		t.Fatalf("Mount.Do() = %v", err)
	}
	defer exec.Command("umount", target).Run()
	if err := os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644); err != nil {
		t.Errorf("write into tmpfs: %v", err)
	}
	bad := Mount{Source: "none", Target: filepath.Join(t.TempDir(), "c"), FSType: "no-such-fs"}
	if err := bad.Do(); err == nil || !strings.Contains(err.Error(), "no-such-fs") {
		t.Errorf("Mount.Do(bad fs) = %v, want an error naming the fs", err)
	}
}

// zombie starts cmd and waits until it has exited, unwaited.
func zombie(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !zombieChildren(os.Getpid())[cmd.Process.Pid] {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became a zombie", cmd.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A child whose owner waits late keeps its exit status; one nobody waits
// for is collected after the grace period.
func TestReaper(t *testing.T) {
	r := NewReaper(time.Minute)
	owned := exec.Command("sh", "-c", "exit 3")
	zombie(t, owned)
	now := time.Now()
	if n, next := r.Once(nil, now); n != 0 || next <= 0 || next > time.Minute {
		t.Fatalf("Once within the grace = %d, %v; want 0 and a time to look again", n, next)
	}
	if err := owned.Wait(); err == nil || owned.ProcessState.ExitCode() != 3 {
		t.Fatalf("owner's Wait = %v (exit %d), want exit status 3", err, owned.ProcessState.ExitCode())
	}

	orphan := exec.Command("true")
	zombie(t, orphan)
	if n, _ := r.Once(nil, now); n != 0 {
		t.Fatalf("Once reaped %d children within the grace", n)
	}
	if n, _ := r.Once(nil, now.Add(time.Minute)); n != 1 {
		t.Fatalf("Once after the grace reaped %d children, want 1", n)
	}
	if zombieChildren(os.Getpid())[orphan.Process.Pid] {
		t.Errorf("pid %d still a zombie", orphan.Process.Pid)
	}
	if n, next := r.Once(nil, now.Add(2*time.Minute)); n != 0 || next != 0 {
		t.Errorf("Once with nothing left = %d, %v", n, next)
	}
}

func FuzzSuperblock(f *testing.F) {
	f.Add(fakeExt4("root"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sb, err := ReadSuperblock(bytes.NewReader(data))
		if err == nil && len(sb.Label) > 16 {
			t.Fatalf("label %q longer than 16 bytes", sb.Label)
		}
	})
}
