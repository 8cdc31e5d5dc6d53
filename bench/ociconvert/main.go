// Command ociconvert measures the OCI conversion (issue 15): it builds an
// image of about -mib MiB from host files (regular files of -src, in
// three layers, the last whiting out a tenth of the first), writes it as
// an OCI layout, converts it with mkimage/oci (flatten + mksquashfs) and
// prints the time and squashfs size next to a plain `mksquashfs` of the
// same flattened tree (xz, the tool's defaults otherwise).
//
//	go run ./bench/ociconvert                 # ~100 MiB of /usr/lib/x86_64-linux-gnu
//	go run ./bench/ociconvert -mib 50 -src /usr/share
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pantavisor/pantavisor-go/mkimage/oci"
	"github.com/pantavisor/pantavisor-go/mkimage/oci/ocitest"
)

func main() {
	mib := flag.Int("mib", 100, "image size (uncompressed), MiB")
	src := flag.String("src", "/usr/lib/x86_64-linux-gnu", "host directory the files come from")
	comp := flag.String("comp", "xz", "squashfs compressor")
	flag.Parse()
	if err := run(*mib, *src, *comp); err != nil {
		fmt.Fprintln(os.Stderr, "ociconvert:", err)
		os.Exit(1)
	}
}

func run(mib int, src, comp string) error {
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
	fmt.Printf("image: %d files, %.1f MiB uncompressed, 3 layers\n", n, float64(total)/(1<<20))

	t0 := time.Now()
	im, err := oci.Open(ctx, "oci:"+tmp+"/layout:v1", "linux/amd64")
	if err != nil {
		return err
	}
	out := filepath.Join(tmp, "root.squashfs")
	if err := oci.Convert(ctx, im, out, oci.Options{Comp: comp}); err != nil {
		return err
	}
	conv := time.Since(t0)
	fi, _ := os.Stat(out)

	root := filepath.Join(tmp, "flat")
	os.Mkdir(root, 0o755)
	t1 := time.Now()
	if err := oci.Stage(im, root); err != nil {
		return err
	}
	flat := time.Since(t1)
	plain := filepath.Join(tmp, "plain.squashfs")
	t2 := time.Now()
	cmd := exec.Command("mksquashfs", root, plain, "-noappend", "-quiet", "-no-progress", "-comp", comp)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mksquashfs: %w: %s", err, b)
	}
	sq := time.Since(t2)
	pi, _ := os.Stat(plain)
	fmt.Printf("oci.Convert (open+flatten+mksquashfs): %6.2f s  %7.2f MiB\n", conv.Seconds(), float64(fi.Size())/(1<<20))
	fmt.Printf("  of which flatten alone:              %6.2f s\n", flat.Seconds())
	fmt.Printf("mksquashfs of the flattened tree:      %6.2f s  %7.2f MiB\n", sq.Seconds(), float64(pi.Size())/(1<<20))
	return nil
}
