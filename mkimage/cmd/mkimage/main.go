// Command mkimage builds a Pantavisor image for a target recipe.
//
//	mkimage [-repo .] [-out out/<target>] [-cache out/.cache] [-init pantavisor|smoke] [-offline] [-merge-src <pvr checkout|export>]
//	        [-pvs-cert-pem <ca.crt>] [-pvs-pub-pem <pub.pem>] [-sig-key <key.pem> [-x5c <chain.pem>]] <target>
//
// Outputs: out/<target>/<target>-pv-<size>MiB.img, out/<target>/<target>.pvr.tgz
// and the staged storage tree in out/<target>/work/storage. Time stamps come
// from SOURCE_DATE_EPOCH (default 1700000000), so a rebuild of the same
// inputs gives the same bytes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/pantavisor/pantavisor-go/mkimage/builder"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

// defaultEpoch is used when SOURCE_DATE_EPOCH is not set.
const defaultEpoch = 1700000000

func run(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "repository root (targets/, addons/, vendor-skel/, bootloader/)")
	out := fs.String("out", "", "output directory (default <repo>/out/<target>)")
	cache := fs.String("cache", "", "package and artifact cache (default $XDG_CACHE_HOME or ~/.cache /pantavisor-mkimage)")
	init := fs.String("init", builder.InitPantavisor, "what /init runs: pantavisor or smoke (boot probe)")
	offline := fs.Bool("offline", false, "do not refresh the Debian indexes (use the cache)")
	mergeSrc := fs.String("merge-src", os.Getenv("PVR_MERGE_SRC"), "reference device (pvr checkout, export, or clone URL/device IP, cloned first) whose containers replace the recipe's (env PVR_MERGE_SRC)")
	useSrcBSP := fs.Bool("use-src-bsp", os.Getenv("PVR_USE_SRC_BSP") == "yes", "take the BSP of -merge-src instead of building one (env PVR_USE_SRC_BSP=yes)")
	autoTok := fs.String("autotok", os.Getenv("PV_FACTORY_AUTOTOK"), "factory auto-claim token: factory.autotok of the factory pantahub.config (env PV_FACTORY_AUTOTOK)")
	mergeSBOM := fs.String("merge-sbom", os.Getenv("PV_MERGE_SBOM"), "SPDX JSON document, or directory of them, merged into the image's SBOM (env PV_MERGE_SBOM)")
	pvsCert := fs.String("pvs-cert-pem", os.Getenv("PV_PVS_CERT_PEM"), "CA certificate(s) the device trusts, the initrd's /etc/pantavisor/pvs/trust/ca-certificates.crt (env PV_PVS_CERT_PEM; default the public developer CA, ca/README.md)")
	pvsPub := fs.String("pvs-pub-pem", os.Getenv("PV_PVS_PUB_PEM"), "public key(s) for signatures without x5c, the initrd's /etc/pantavisor/pvs/trust/pub.pem (env PV_PVS_PUB_PEM)")
	sigKey := fs.String("sig-key", os.Getenv("PVR_SIG_KEY"), "private key trails/0 is signed with (env PVR_SIG_KEY; default ca/developer/signer.key)")
	sigX5C := fs.String("x5c", os.Getenv("PVR_X5C_PATH"), "certificate chain of -sig-key, signer first (env PVR_X5C_PATH; none: sign without x5c)")
	until := fs.String("until", "", "stop after this stage: "+strings.Join(builder.Stages, ", "))
	debug := fs.String("debug", os.Getenv("PANTAVISOR_DEBUG"), "yes: add the debug addon; no: leave it out; empty: as the recipe says (env PANTAVISOR_DEBUG)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want exactly one target")
	}
	epoch := int64(defaultEpoch)
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		e, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", v, err)
		}
		epoch = e
	} else {
		// go-diskfs reads the environment for FAT time stamps.
		os.Setenv("SOURCE_DATE_EPOCH", strconv.FormatInt(epoch, 10))
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	res, err := builder.Build(ctx, builder.Options{Repo: *repo, Target: fs.Arg(0), Out: *out, Cache: *cache,
		Init: *init, Epoch: epoch, Offline: *offline, MergeSrc: *mergeSrc, MergeSBOM: *mergeSBOM, AutoTok: *autoTok, UseSrcBSP: *useSrcBSP, Until: *until, Debug: *debug, Progress: stdout, Log: log,
		PvsCertPEM: *pvsCert, PvsPubPEM: *pvsPub, SigKey: *sigKey, SigX5C: *sigX5C})
	if res != nil {
		summary(stdout, res)
	}
	return err
}

func summary(w io.Writer, res *builder.Result) {
	fmt.Fprintln(w, "==> summary")
	for _, s := range res.Steps {
		fmt.Fprintf(w, "    %-14s %8.1fs\n", s.Name, s.Duration.Seconds())
	}
	names := make([]string, 0, len(res.Sizes))
	for n := range res.Sizes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "    %-18s %10d bytes (%.1f MiB)\n", n, res.Sizes[n], float64(res.Sizes[n])/(1<<20))
	}
	if res.Image != "" {
		fmt.Fprintf(w, "    image: %s\n", res.Image)
	}
	if res.Pvr != "" {
		fmt.Fprintf(w, "    bsp:   %s\n", res.Pvr)
	}
	if res.SBOM != "" {
		fmt.Fprintf(w, "    sbom:  %s\n", res.SBOM)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "    NOT DONE: %s\n", n)
	}
}
