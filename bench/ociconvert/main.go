// Command ociconvert measures the OCI conversion (issue 15): it builds an
// image of about -mib MiB from host files (regular files of -src, in
// three layers, the last whiting out a tenth of the first), writes it as
// an OCI layout, converts it with mkimage/oci (flatten + mksquashfs) and
// prints the medians of -runs runs of its time and squashfs size next to
// a plain `mksquashfs` of the same flattened tree with the options
// oci.Convert gives it (xz, -reproducible, owners, xattrs and hard links
// kept). The default source is the host's /usr in walk order (Debian
// packages' programs, headers, libraries; files of at most -maxfile):
// real package content, so real compressibility.
//
//	go run ./bench/ociconvert                 # ~100 MiB of /usr, 3 runs
//	go run ./bench/ociconvert -mib 50 -src /usr/share
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pantavisor/pantavisor-go/mkimage/oci"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
)

func main() {
	mib := flag.Int("mib", 100, "image size (uncompressed), MiB")
	src := flag.String("src", "/usr", "host directory the files come from")
	maxFile := flag.Int64("maxfile", 4<<20, "files larger than this are left out (one libLLVM would make the whole image)")
	comp := flag.String("comp", "xz", "squashfs compressor")
	runs := flag.Int("runs", 3, "runs; medians are printed")
	flag.Parse()
	if err := run(*mib, *src, *comp, *runs, *maxFile); err != nil {
		fmt.Fprintln(os.Stderr, "ociconvert:", err)
		os.Exit(1)
	}
}

func run(mib int, src, comp string, runs int, maxFile int64) error {
	ctx := context.Background()
	var layers [3][]ocitest.Entry
	var total int64
	var n int
	seenDir := map[string]bool{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || total >= int64(mib)<<20 {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() > maxFile {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel := strings.TrimPrefix(p, "/")
		l := n % 3
		for dir := filepath.Dir(rel); dir != "."; dir = filepath.Dir(dir) {
			if !seenDir[fmt.Sprint(l, dir)] {
				seenDir[fmt.Sprint(l, dir)] = true
				layers[l] = append(layers[l], ocitest.Dir(dir+"/"))
			}
		}
		layers[l] = append(layers[l], ocitest.File(rel, b, 0o644))
		if l == 0 && n%30 == 0 {
			layers[2] = append(layers[2], ocitest.Whiteout(filepath.Dir(rel), filepath.Base(rel)))
		}
		total += int64(len(b))
		n++
		return nil
	})
	if err != nil {
		return err
	}
	var ls []v1.Layer
	for _, es := range layers {
		l, err := ocitest.Layer(es...)
		if err != nil {
			return err
		}
		ls = append(ls, l)
	}
	img, err := ocitest.Image("linux/amd64", v1.Config{Cmd: []string{"/bin/sh"}}, ls...)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ociconvert-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := ocitest.WriteLayout(filepath.Join(tmp, "layout"), "v1", img); err != nil {
		return err
	}
	fmt.Printf("image: %d files from %s, %.1f MiB uncompressed, 3 layers, %s\n", n, src, float64(total)/(1<<20), comp)

	// The plain run gets mksquashfs's options as oci.Convert passes them
	// (squashfs.Make with owners, xattrs and hard links kept), so the
	// difference is the conversion's own work.
	const epoch = "1700000000"
	args := func(dir, out string) []string {
		a := []string{dir, out, "-noappend", "-quiet", "-no-progress", "-reproducible",
			"-comp", comp, "-mkfs-time", epoch, "-all-time", epoch}
		if comp == "zstd" {
			a = append(a, "-Xcompression-level", "6")
		}
		return a
	}
	var conv, flat, sq []float64
	var convSize, plainSize int64
	var same bool
	for i := 0; i < runs; i++ {
		out := filepath.Join(tmp, "root.squashfs")
		t0 := time.Now()
		im, err := oci.Open(ctx, "oci:"+tmp+"/layout:v1", "linux/amd64")
		if err != nil {
			return err
		}
		if err := oci.Convert(ctx, im, out, oci.Options{Comp: comp, Epoch: 1700000000}); err != nil {
			return err
		}
		conv = append(conv, time.Since(t0).Seconds())
		fi, err := os.Stat(out)
		if err != nil {
			return err
		}
		convSize = fi.Size()
		convSum, err := sum(out)
		if err != nil {
			return err
		}
		os.Remove(out)

		root := filepath.Join(tmp, "flat")
		if err := os.RemoveAll(root); err != nil {
			return err
		}
		os.Mkdir(root, 0o755)
		t1 := time.Now()
		if err := oci.Stage(im, root); err != nil {
			return err
		}
		flat = append(flat, time.Since(t1).Seconds())
		plain := filepath.Join(tmp, "plain.squashfs")
		t2 := time.Now()
		cmd := exec.Command("mksquashfs", args(root, plain)...)
		// mksquashfs refuses SOURCE_DATE_EPOCH with -mkfs-time
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "SOURCE_DATE_EPOCH=") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("mksquashfs: %w: %s", err, b)
		}
		sq = append(sq, time.Since(t2).Seconds())
		pi, err := os.Stat(plain)
		if err != nil {
			return err
		}
		plainSize = pi.Size()
		plainSum, err := sum(plain)
		if err != nil {
			return err
		}
		same = convSum == plainSum
		os.Remove(plain)
		fmt.Printf("run %d: convert %.2f s, flatten %.2f s, mksquashfs %.2f s\n", i+1, conv[i], flat[i], sq[i])
	}
	fmt.Printf("medians of %d runs:\n", runs)
	fmt.Printf("oci.Convert (open+flatten+mksquashfs): %6.2f s  %7.2f MiB\n", median(conv), float64(convSize)/(1<<20))
	fmt.Printf("  flatten alone (oci.Stage):           %6.2f s\n", median(flat))
	fmt.Printf("mksquashfs of the flattened tree:      %6.2f s  %7.2f MiB\n", median(sq), float64(plainSize)/(1<<20))
	fmt.Printf("  same bytes: %v\n", same)
	fmt.Printf("  mksquashfs %s\n", strings.Join(args("<flat>", "<out>"), " "))
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sum(p string) ([32]byte, error) {
	b, err := os.ReadFile(p)
	return sha256.Sum256(b), err
}
