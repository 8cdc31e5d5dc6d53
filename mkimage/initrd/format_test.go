package initrd

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// goWriters are the Go encoders of the formats, used when the format's
// program is not installed.
var goWriters = map[string]func(io.Writer, *Tree) error{
	"xz": WriteXZ4, "zstd": WriteZstd, "gzip": WriteGzip, "none": WriteCPIO,
}

// encoders are every way this machine writes the format: its Go encoder
// and, when installed, its program.
func encoders(t *testing.T, f Format) map[string]WriteFunc {
	t.Helper()
	w, ok := goWriters[f.Name]
	if !ok {
		t.Fatalf("format %s has no Go encoder in goWriters", f.Name)
	}
	m := map[string]WriteFunc{"go": func(_ context.Context, out io.Writer, tr *Tree) error { return w(out, tr) }}
	if kind, write := f.Encoder("x86"); kind != f.Name {
		m[kind] = write
	}
	return m
}

// TestFormats: every format, with every encoder, writes the same bytes
// for the same tree, padded to 4 bytes, that Detect recognises and
// Decompress turns back into the archive.
func TestFormats(t *testing.T) {
	var plain bytes.Buffer
	if err := WriteCPIO(&plain, sampleTree(t)); err != nil {
		t.Fatal(err)
	}
	for _, f := range Formats {
		for kind, write := range encoders(t, f) {
			var a, b bytes.Buffer
			if err := write(context.Background(), &a, sampleTree(t)); err != nil {
				t.Fatalf("%s %s: %v", f.Name, kind, err)
			}
			write(context.Background(), &b, sampleTree(t))
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("%s %s: two writes of one tree differ", f.Name, kind)
			}
			if a.Len()%4 != 0 {
				t.Errorf("%s %s: length %d is not a multiple of 4", f.Name, kind, a.Len())
			}
			if got, ok := Detect(a.Bytes()); !ok || got.Name != f.Name {
				t.Errorf("%s %s: Detect = %q, %v", f.Name, kind, got.Name, ok)
			}
			raw, err := Decompress(a.Bytes(), 1<<30)
			if err != nil || !bytes.Equal(raw, plain.Bytes()) {
				t.Errorf("%s %s: Decompress = %d bytes, %v; want the archive (%d bytes)", f.Name, kind, len(raw), err, plain.Len())
			}
			if _, err := Decompress(a.Bytes(), int64(plain.Len()-1)); err == nil {
				t.Errorf("%s %s: Decompress past its limit succeeded", f.Name, kind)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	for _, n := range Names() {
		if f, ok := Lookup(n); !ok || f.Name != n || f.Ext == "" {
			t.Errorf("Lookup(%q) = %+v, %v", n, f, ok)
		}
	}
	if _, ok := Lookup("lz4"); ok {
		t.Error("Lookup(lz4) found a format")
	}
	if !slices.Equal(Names()[:2], []string{"xz", "zstd"}) {
		t.Errorf("Names() = %v", Names())
	}
}

// TestZstdWindow: both zstd encoders write frames whose window the
// kernel's decoder accepts and allocates at boot (≤ 8 MiB), with a
// content checksum, on an archive larger than the window.
func TestZstdWindow(t *testing.T) {
	tr := NewTree()
	tr.AddDir("/data", 0o755)
	data := make([]byte, 12<<20)
	for i := range data {
		data[i] = byte(i*7>>9) ^ byte(i>>13)
	}
	tr.AddData("/data/blob", data, 0o644)
	f, _ := Lookup("zstd")
	if _, err := exec.LookPath("zstd"); err != nil {
		testenv.Skipf(t, "zstd not installed (Debian zstd)")
	}
	for kind, write := range encoders(t, f) {
		var b bytes.Buffer
		if err := write(context.Background(), &b, tr); err != nil {
			t.Fatal(err)
		}
		var h zstd.Header
		if err := h.Decode(b.Bytes()); err != nil {
			t.Fatalf("%s: frame header: %v", kind, err)
		}
		if h.WindowSize > ZstdWindow || !h.HasCheckSum {
			t.Errorf("%s: window %d, checksum %v; want ≤ %d and a checksum", kind, h.WindowSize, h.HasCheckSum, ZstdWindow)
		}
		if kind == "go" {
			continue
		}
		// zstd's threads do not change its output: one CPU writes the same.
		if _, err := exec.LookPath("taskset"); err != nil {
			testenv.Skipf(t, "no taskset (util-linux)")
		}
		var plain bytes.Buffer
		WriteCPIO(&plain, tr)
		cmd := exec.Command("taskset", append([]string{"-c", "0", "zstd"}, ZstdArgs()...)...)
		cmd.Stdin = &plain
		one, err := cmd.Output()
		if err != nil {
			t.Fatalf("zstd on one CPU: %v", err)
		}
		for len(one)%4 != 0 {
			one = append(one, 0)
		}
		if !bytes.Equal(one, b.Bytes()) {
			t.Errorf("zstd on one CPU wrote other bytes (%d, want %d): not reproducible", len(one), b.Len())
		}
		// nor does the thread count the builder gives it (WithThreads)
		for _, n := range []int{1, 3} {
			var bn bytes.Buffer
			if err := write(WithThreads(context.Background(), n), &bn, tr); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bn.Bytes(), b.Bytes()) {
				t.Errorf("zstd with %d threads wrote other bytes (%d, want %d)", n, bn.Len(), b.Len())
			}
		}
	}
}

// FuzzDetect: Detect names the format whose magic starts the data, and
// Decompress of anything fails or returns at most its limit, never
// panics.
func FuzzDetect(f *testing.F) {
	for _, ft := range Formats {
		var b bytes.Buffer
		goWriters[ft.Name](&b, sampleTreeF())
		f.Add(b.Bytes())
		f.Add(append(slices.Clone(ft.Magic), 0, 1, 2))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ft, ok := Detect(data)
		if ok != slices.ContainsFunc(Formats, func(x Format) bool { return bytes.HasPrefix(data, x.Magic) }) {
			t.Fatalf("Detect = %v for % x", ok, data[:min(len(data), 8)])
		}
		if ok && !bytes.HasPrefix(data, ft.Magic) {
			t.Fatalf("Detect = %s without its magic", ft.Name)
		}
		raw, err := Decompress(data, 1<<20)
		if err == nil && len(raw) > 1<<20 {
			t.Fatalf("Decompress returned %d bytes past its limit", len(raw))
		}
		if !ok && err == nil {
			t.Fatal("Decompress of an unknown format succeeded")
		}
	})
}

// sampleTreeF is a small tree for fuzz seeds (no *testing.T there).
func sampleTreeF() *Tree {
	tr := NewTree()
	tr.AddDir("/etc", 0o755)
	tr.AddData("/etc/hostname", []byte("pv\n"), 0o644)
	return tr
}
