package dmverity

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

func veritysetup(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("veritysetup")
	if err != nil {
		testenv.Skipf(t, "skipping: no veritysetup (Debian cryptsetup-bin)")
	}
	return p
}

func writeData(t *testing.T, dir string, blocks int) string {
	t.Helper()
	b := make([]byte, blocks*BlockSize)
	rand.Read(b)
	p := filepath.Join(dir, fmt.Sprintf("data-%d.img", blocks))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// TestFormatMatchesVeritysetup: for tree depths 0 to 3, the hash device
// Format writes is byte for byte the one of veritysetup format with the
// same salt and UUID, veritysetup verify accepts it with our root hash,
// and rejects it once a data block changes.
func TestFormatMatchesVeritysetup(t *testing.T) {
	vs := veritysetup(t)
	dir := t.TempDir()
	salt, _ := hex.DecodeString("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	for _, blocks := range []int{1, 2, 128, 129, 128*128 + 1} {
		data := writeData(t, dir, blocks)
		ours := data + ".hash"
		root, err := Format(data, ours, salt)
		if err != nil {
			t.Fatalf("%d blocks: Format() error = %v", blocks, err)
		}
		sb, err := ReadSuperblock(ours)
		if err != nil {
			t.Fatalf("%d blocks: ReadSuperblock(ours) error = %v", blocks, err)
		}
		if out, err := exec.Command(vs, "verify", data, ours, hex.EncodeToString(root)).CombinedOutput(); err != nil {
			t.Errorf("%d blocks: veritysetup verify of our hash device: %v: %s", blocks, err, out)
		}
		theirs := data + ".vs-hash"
		out, err := exec.Command(vs, "format", "--salt="+hex.EncodeToString(salt), "--uuid="+uuidString(sb.UUID), data, theirs).CombinedOutput()
		if err != nil {
			t.Fatalf("%d blocks: veritysetup format: %v: %s", blocks, err, out)
		}
		m := regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]+)$`).FindSubmatch(out)
		if m == nil || string(m[1]) != hex.EncodeToString(root) {
			t.Errorf("%d blocks: veritysetup root hash = %q, ours %x", blocks, m, root)
		}
		a, _ := os.ReadFile(ours)
		b, _ := os.ReadFile(theirs)
		if !bytes.Equal(a, b) {
			t.Errorf("%d blocks: our hash device (%d bytes) differs from veritysetup's (%d bytes)", blocks, len(a), len(b))
		}
		// One flipped byte in the last data block.
		raw, _ := os.ReadFile(data)
		raw[len(raw)-1] ^= 1
		bad := data + ".bad"
		os.WriteFile(bad, raw, 0o644)
		if out, err := exec.Command(vs, "verify", bad, ours, hex.EncodeToString(root)).CombinedOutput(); err == nil {
			t.Errorf("%d blocks: veritysetup verify accepted a corrupted data block: %s", blocks, out)
		}
	}
}

// TestReadVeritysetupSuperblock parses what veritysetup format writes with
// its defaults (random salt) and other block sizes.
func TestReadVeritysetupSuperblock(t *testing.T) {
	vs := veritysetup(t)
	dir := t.TempDir()
	data := writeData(t, dir, 64)
	for _, tc := range []struct {
		args     []string
		dbs, hbs uint32
		blocks   uint64
		alg      string
		saltSize int
	}{
		{nil, 4096, 4096, 64, "sha256", 32},
		{[]string{"--data-block-size=1024", "--hash-block-size=512", "--hash=sha512", "--salt=abcd"}, 1024, 512, 256, "sha512", 2},
		{[]string{"--salt=-"}, 4096, 4096, 64, "sha256", 0},
	} {
		hash := filepath.Join(dir, "h")
		os.Remove(hash)
		args := append(append([]string{"format"}, tc.args...), data, hash)
		out, err := exec.Command(vs, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("veritysetup %v: %v: %s", args, err, out)
		}
		sb, err := ReadSuperblock(hash)
		if err != nil {
			t.Fatalf("%v: ReadSuperblock() error = %v", tc.args, err)
		}
		if sb.DataBlockSize != tc.dbs || sb.HashBlockSize != tc.hbs || sb.DataBlocks != tc.blocks || sb.Algorithm != tc.alg || len(sb.Salt) != tc.saltSize {
			t.Errorf("%v: superblock = %+v", tc.args, sb)
		}
		if m := regexp.MustCompile(`(?m)^Salt:\s+([0-9a-f]+)$`).FindSubmatch(out); m != nil && string(m[1]) != hex.EncodeToString(sb.Salt) {
			t.Errorf("%v: salt %x, veritysetup says %s", tc.args, sb.Salt, m[1])
		}
		if m := regexp.MustCompile(`(?m)^UUID:\s+(\S+)$`).FindSubmatch(out); m == nil || string(m[1]) != uuidString(sb.UUID) {
			t.Errorf("%v: UUID %s, veritysetup says %q", tc.args, uuidString(sb.UUID), m)
		}
	}
}

func TestFormatRefusesPartialBlock(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d")
	os.WriteFile(p, make([]byte, BlockSize+1), 0o644)
	if _, err := Format(p, p+".hash", nil); !errors.Is(err, ErrFormat) {
		t.Errorf("Format(partial block) error = %v, want ErrFormat", err)
	}
	os.WriteFile(p, nil, 0o644)
	if _, err := Format(p, p+".hash", nil); !errors.Is(err, ErrFormat) {
		t.Errorf("Format(empty) error = %v, want ErrFormat", err)
	}
}

func validSuperblock() []byte {
	sb := &Superblock{Algorithm: "sha256", DataBlockSize: 4096, HashBlockSize: 4096, DataBlocks: 10, Salt: []byte{1, 2, 3}}
	return sb.marshal()
}

func TestParseSuperblockRejects(t *testing.T) {
	set := func(off int, b ...byte) []byte {
		sb := validSuperblock()
		copy(sb[off:], b)
		return sb
	}
	if _, err := ParseSuperblock(validSuperblock()); err != nil {
		t.Fatalf("valid superblock: %v", err)
	}
	for name, b := range map[string][]byte{
		"short":         validSuperblock()[:100],
		"signature":     set(0, 'V'),
		"version":       set(offVersion, 2),
		"chromeos type": set(offHashType, 0),
		"algorithm":     set(offAlgorithm, 'm', 'd', '5', 0),
		"odd block":     set(offDataBS, 0, 0x11, 0, 0),
		"tiny block":    set(offHashBS, 0, 1, 0, 0),
		"huge block":    set(offHashBS, 0, 0, 0, 1),
		"no blocks":     set(offDataBlks, 0),
		"salt size":     set(offSaltSize, 0, 2),
		"overflow":      set(offDataBlks, 0, 0, 0, 0, 0, 0, 0, 0x80),
	} {
		if _, err := ParseSuperblock(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: error = %v, want ErrFormat", name, err)
		}
	}
}

func TestTable(t *testing.T) {
	sb, _ := ParseSuperblock(validSuperblock())
	got := sb.Table("7:1", "7:2", []byte{0xab, 0xcd})
	if want := "1 7:1 7:2 4096 4096 10 1 sha256 abcd 010203"; got != want {
		t.Errorf("Table() = %q, want %q", got, want)
	}
	sb.Salt = nil
	if got := sb.Table("a", "b", []byte{1}); !strings.HasSuffix(got, " 01 -") {
		t.Errorf("Table() without salt = %q", got)
	}
}

func TestParseManifest(t *testing.T) {
	root := strings.Repeat("ab", 32)
	good := `{"type":"dm-verity","data_device":"root.squashfs","hash_device":"root.squashfs.hash","root_hash":"` + root + `"}`
	m, err := ParseManifest([]byte(good))
	if err != nil || m.DataDevice != "root.squashfs" || m.HashDevice != "root.squashfs.hash" {
		t.Fatalf("ParseManifest(good) = %+v, %v", m, err)
	}
	for _, bad := range []string{
		`{"type":"dm-crypt","data_device":"a","hash_device":"b","root_hash":"` + root + `"}`,
		`{"type":"dm-verity","data_device":"../a","hash_device":"b","root_hash":"` + root + `"}`,
		`{"type":"dm-verity","data_device":"a","hash_device":"x/b","root_hash":"` + root + `"}`,
		`{"type":"dm-verity","data_device":"..","hash_device":"b","root_hash":"` + root + `"}`,
		`{"type":"dm-verity","data_device":"","hash_device":"b","root_hash":"` + root + `"}`,
		`{"type":"dm-verity","data_device":"a","hash_device":"a","root_hash":"` + root + `"}`,
		`{"type":"dm-verity","data_device":"a\n","hash_device":"b","root_hash":"` + root + `"}`,
		`{"type":"dm-verity","data_device":"a","hash_device":"b","root_hash":"abc"}`,
		`{"type":"dm-verity","data_device":"a","hash_device":"b","root_hash":"zz` + root[2:] + `"}`,
		`{"type":"dm-verity","data_device":"a","hash_device":"b","root_hash":"` + root + `00"}`,
		`{"type":"dm-verity","data_device":"a","hash_device":"b","root_hash":"` + root + `"} {}`,
		`[]`,
	} {
		if _, err := ParseManifest([]byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseManifest(%s) error = %v, want ErrFormat", bad, err)
		}
	}
}

func FuzzParseSuperblock(f *testing.F) {
	f.Add(validSuperblock())
	f.Add(make([]byte, SuperblockSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := ParseSuperblock(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		// What parses survives a round trip and makes a sane table.
		again, err := ParseSuperblock(sb.marshal())
		if err != nil || again.DataBlocks != sb.DataBlocks || !bytes.Equal(again.Salt, sb.Salt) || again.Algorithm != sb.Algorithm {
			t.Fatalf("round trip: %+v, %v; was %+v", again, err, sb)
		}
		if sb.DataSize()/uint64(sb.DataBlockSize) != sb.DataBlocks {
			t.Fatalf("data size overflows: %d blocks of %d", sb.DataBlocks, sb.DataBlockSize)
		}
		if fields := strings.Fields(sb.Table("1:2", "3:4", make([]byte, sb.DigestSize()))); len(fields) != 10 {
			t.Fatalf("table %q has %d fields", fields, len(fields))
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"type":"dm-verity","data_device":"root.squashfs","hash_device":"root.squashfs.hash","root_hash":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"type":"dm-verity","data_device":"../x","hash_device":"y","root_hash":""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseManifest(raw)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		for _, n := range []string{m.DataDevice, m.HashDevice} {
			if filepath.Base(n) != n || n == ".." || n == "." || strings.ContainsAny(n, "/\x00\n") {
				t.Fatalf("accepted device name %q", n)
			}
		}
		if r, err := m.Root(); err != nil || len(r) == 0 {
			t.Fatalf("accepted root %q: %v", m.RootHash, err)
		}
	})
}

// TestFormatSeeded: the same data and seed give the same hash device byte
// for byte, another seed another salt and UUID; veritysetup and Verify
// accept it, and Verify rejects a changed data block, a changed tree
// block and a wrong root.
func TestFormatSeeded(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, 129)
	a, b, c := data+".a", data+".b", data+".c"
	rootA, err := FormatSeeded(data, a, []byte("seed"))
	if err != nil {
		t.Fatal(err)
	}
	rootB, err := FormatSeeded(data, b, []byte("seed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FormatSeeded(data, c, []byte("other")); err != nil {
		t.Fatal(err)
	}
	ra, _ := os.ReadFile(a)
	rb, _ := os.ReadFile(b)
	if !bytes.Equal(ra, rb) || !bytes.Equal(rootA, rootB) {
		t.Errorf("FormatSeeded is not reproducible: roots %x, %x", rootA, rootB)
	}
	sa, _ := ReadSuperblock(a)
	sc, _ := ReadSuperblock(c)
	if bytes.Equal(sa.Salt, sc.Salt) || sa.UUID == sc.UUID || len(sa.Salt) != 32 {
		t.Errorf("seeds give salt %x uuid %x and salt %x uuid %x", sa.Salt, sa.UUID, sc.Salt, sc.UUID)
	}
	if v := sa.UUID[6] >> 4; v != 8 {
		t.Errorf("UUID version %d, want 8", v)
	}
	if err := Verify(data, a, rootA); err != nil {
		t.Errorf("Verify(own) error = %v", err)
	}
	if err := Verify(data, a, append([]byte{rootA[0] ^ 1}, rootA[1:]...)); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(wrong root) error = %v, want ErrMismatch", err)
	}
	raw, _ := os.ReadFile(data)
	raw[5*BlockSize] ^= 1
	bad := data + ".bad"
	os.WriteFile(bad, raw, 0o644)
	if err := Verify(bad, a, rootA); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(changed data block) error = %v, want ErrMismatch", err)
	}
	// A changed byte in the last block of the tree (the data and the
	// root still match): the tree check catches it.
	tree := append([]byte(nil), ra...)
	tree[len(tree)-1] ^= 1
	os.WriteFile(a+".bad", tree, 0o644)
	if err := Verify(data, a+".bad", rootA); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(changed tree block) error = %v, want ErrMismatch", err)
	}
	if _, err := exec.LookPath("veritysetup"); err != nil {
		return // TestFormatMatchesVeritysetup says so when CI needs it
	}
	if out, err := exec.Command("veritysetup", "verify", data, a, hex.EncodeToString(rootA)).CombinedOutput(); err != nil {
		t.Errorf("veritysetup verify of the seeded hash device: %v: %s", err, out)
	}
	theirs := data + ".vs"
	out, err := exec.Command("veritysetup", "format", "--salt="+hex.EncodeToString(sa.Salt), "--uuid="+uuidString(sa.UUID), data, theirs).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup format: %v: %s", err, out)
	}
	if rt, _ := os.ReadFile(theirs); !bytes.Equal(rt, ra) {
		t.Errorf("veritysetup's hash device with the seeded salt and UUID differs from ours")
	}
}

// TestVerifyVeritysetup: Verify accepts what veritysetup format writes
// with other block sizes and algorithms (its tree code is not only
// Format's).
func TestVerifyVeritysetup(t *testing.T) {
	vs := veritysetup(t)
	dir := t.TempDir()
	data := writeData(t, dir, 300)
	for _, args := range [][]string{nil, {"--data-block-size=1024", "--hash-block-size=512", "--hash=sha512"}, {"--hash=sha1", "--salt=-"}, {"--data-block-size=512", "--hash-block-size=1024"}} {
		hash := filepath.Join(dir, "h")
		os.Remove(hash)
		out, err := exec.Command(vs, append(append([]string{"format"}, args...), data, hash)...).CombinedOutput()
		if err != nil {
			t.Fatalf("veritysetup format %v: %v: %s", args, err, out)
		}
		m := regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]+)$`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("%v: no root hash in %s", args, out)
		}
		root, _ := hex.DecodeString(string(m[1]))
		if err := Verify(data, hash, root); err != nil {
			t.Errorf("%v: Verify() error = %v", args, err)
		}
		root[0] ^= 1
		if err := Verify(data, hash, root); !errors.Is(err, ErrMismatch) {
			t.Errorf("%v: Verify(wrong root) error = %v, want ErrMismatch", args, err)
		}
	}
}
