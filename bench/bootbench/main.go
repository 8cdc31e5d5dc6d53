// Command bootbench boots x64-uefi images in QEMU (TCG) repeatedly and
// prints the medians of QEMU start → kernel runs /init → READY, QEMU's
// CPU time at /init and at READY, and the boot timeline Pantavisor printed (issue
// 20). Each boot runs on a fresh sparse copy of the image (a first boot,
// as the image tests do); images are booted in turn, run after run, so
// a baseline and a change share the machine's load alike.
//
//	go run ./bench/bootbench -runs 5 base=/tmp/base.img new=out/x64-uefi/x64-uefi-pv-1024MiB.img
//
// bench/boot.sh builds the images and calls it; bench/gokrazy.sh boots a
// gokrazy image with -marker set to its first program's line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/boottest"
)

// marker is the console line that ends a boot (-marker): Pantavisor's
// READY, or another system's first program output (bench/gokrazy.sh).
var marker = defaultMarker

const defaultMarker = "rev=0 status=READY"

// timeline matches the console's boot line: "boot: storage 0.21s, … READY 0.80s (since /init; …)".
var timeline = regexp.MustCompile(`boot: (.*READY [0-9.]+s) \(since /init(?:; /init at ([0-9.]+)s since kernel start)?\)`)

// consoleDir keeps the consoles when set (-console).
var consoleDir string

// arch is the images' Debian architecture (-arch).
var arch string

type sample struct {
	init, ready, cpu float64 // QEMU start → /init, → READY; QEMU CPU at READY
	initCPU          float64 // QEMU CPU at /init
	initReady        float64 // /init → READY: ready - init, the same measure for every image
	line             string  // the timeline, "" when the image prints none
}

func main() {
	runs := flag.Int("runs", 3, "boots per image and firmware")
	fws := flag.String("fw", "bios,uefi", "firmwares: bios (SeaBIOS), uefi (OVMF), uboot (-arch arm64, armhf, mipsel…)")
	flag.StringVar(&arch, "arch", "amd64", "Debian architecture of the images (arm64 for arm64-qemu, with -fw uboot)")
	flag.StringVar(&marker, "marker", marker, "console line that ends a boot (READY in the figures); the timeline is awaited only for the default")
	flag.StringVar(&consoleDir, "console", "", "directory to keep each boot's console in (<label>-<fw>-<run>.log)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: bootbench [-runs N] [-fw bios,uefi] label=image.img ...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*runs, strings.Split(*fws, ","), flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "bootbench:", err)
		os.Exit(1)
	}
}

func run(runs int, fws []string, args []string) error {
	type image struct{ label, path string }
	var imgs []image
	for _, a := range args {
		label, path, ok := strings.Cut(a, "=")
		if !ok {
			label, path = filepath.Base(a), a
		}
		if _, err := os.Stat(path); err != nil {
			return err
		}
		imgs = append(imgs, image{label, path})
	}
	tmp, err := os.MkdirTemp("", "bootbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	got := map[string][]sample{}
	for r := 1; r <= runs; r++ {
		for _, fw := range fws {
			for _, im := range imgs {
				s, console, err := boot(tmp, im.path, boottest.Firmware(fw))
				if consoleDir != "" {
					os.WriteFile(filepath.Join(consoleDir, fmt.Sprintf("%s-%s-%d.log", im.label, fw, r)), []byte(console), 0o644)
				}
				if err != nil {
					// a shared machine may be too slow for one boot: say so, go on
					fmt.Printf("run %d %-20s FAILED: %v\n", r, im.label+" "+fw, err)
					continue
				}
				key := im.label + " " + fw
				got[key] = append(got[key], s)
				fmt.Printf("run %d %-20s start→/init %6.2fs  start→READY %6.2fs  /init→READY %5.2fs  qemu cpu %6.2fs (%5.2fs at /init)\n",
					r, key, s.init, s.ready, s.initReady, s.cpu, s.initCPU)
			}
		}
	}
	fmt.Printf("\nmedians of %d runs (failed runs left out; QEMU TCG, -m 1024; load %s)\n", runs, load())
	fmt.Printf("%-20s %12s %12s %12s %14s %14s\n", "image firmware", "start→/init", "start→READY", "/init→READY", "qemu cpu@/init", "qemu cpu@READY")
	for _, fw := range fws {
		for _, im := range imgs {
			ss := got[im.label+" "+fw]
			fmt.Printf("%-20s %11.2fs %11.2fs %11.2fs %13.2fs %13.2fs\n", im.label+" "+fw,
				median(ss, func(s sample) float64 { return s.init }),
				median(ss, func(s sample) float64 { return s.ready }),
				median(ss, func(s sample) float64 { return s.initReady }),
				median(ss, func(s sample) float64 { return s.initCPU }),
				median(ss, func(s sample) float64 { return s.cpu }))
		}
	}
	fmt.Println("\nboot timeline of the median run (/init→READY), as printed on the console:")
	for _, fw := range fws {
		for _, im := range imgs {
			ss := append([]sample(nil), got[im.label+" "+fw]...)
			if len(ss) == 0 {
				continue
			}
			sort.Slice(ss, func(i, j int) bool { return ss[i].initReady < ss[j].initReady })
			line := ss[(len(ss)-1)/2].line
			if line == "" {
				line = "(none printed)"
			}
			fmt.Printf("%-20s %s\n", im.label+" "+fw, line)
		}
	}
	return nil
}

// boot boots a fresh sparse copy of img.
func boot(tmp, img string, fw boottest.Firmware) (sample, string, error) {
	cp := filepath.Join(tmp, "boot.img")
	os.Remove(cp)
	if out, err := exec.Command("cp", "--sparse=always", img, cp).CombinedOutput(); err != nil {
		return sample{}, "", fmt.Errorf("cp: %v: %s", err, out)
	}
	defer os.Remove(cp)
	// The timeline comes in the WAIT round after READY; an image that
	// prints none (an older one) ends the boot after Grace, which is fine.
	var expect []string
	if marker == defaultMarker {
		expect = []string{"boot: "}
	}
	res, err := boottest.Boot(context.Background(), boottest.Options{Image: cp, Firmware: fw, Arch: arch, Marker: marker,
		Expect: expect, Timeout: 10 * time.Minute, Grace: 20 * time.Second})
	if errors.Is(err, boottest.ErrMissing) {
		err = nil
	}
	if err != nil {
		return sample{}, res.Console, err
	}
	s := sample{init: res.Init.Seconds(), ready: res.Elapsed.Seconds(), cpu: res.CPU.Seconds(), initCPU: res.InitCPU.Seconds()}
	s.initReady = s.ready - s.init
	if m := timeline.FindStringSubmatch(res.Console); m != nil {
		s.line = "boot: " + m[1]
	}
	return s, res.Console, nil
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
