// Package builder runs the image pipeline for one target recipe:
//
//	recipe → Debian packages (cached) → runtime binaries (go build) →
//	initrd + addons → BSP (kernel, modules/firmware squashfs, run.json) →
//	storage with trails/0 → disk image with GRUB → <target>.pvr.tgz
//
// Each stage is a function from values to values; Build runs each one as
// soon as the stages it needs are done (the initrd's compression beside
// the addons, the BSP volumes and the containers), times them and prints
// progress.
//
//	res, err := builder.Build(ctx, builder.Options{Repo: ".", Target: "x64-uefi", ...})
package builder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/boot"
	"github.com/pantavisor/pantavisor-go/mkimage/container"
	"github.com/pantavisor/pantavisor-go/mkimage/cpus"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/state"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Init choices for /init in the initrd.
const (
	InitPantavisor = "pantavisor"
	InitSmoke      = "smoke"
)

// Options configure a build.
type Options struct {
	// Repo is the repository root (targets/, addons/, vendor-skel/, ...).
	Repo string
	// Target names targets/<Target>.toml.
	Target string
	// Recipe, when set, is built instead of targets/<Target>.toml: a
	// variant of a target (a test adds a container to it). Its paths
	// stay relative to Repo; Target still names the default Out.
	Recipe *recipe.Recipe
	// Out is the output directory (default <Repo>/out/<Target>).
	Out string
	// Cache holds downloaded packages and cached artifacts.
	Cache string
	// Init is what /init runs: "pantavisor" or "smoke" (a boot probe).
	Init string
	// Epoch is SOURCE_DATE_EPOCH: every time stamp in the outputs.
	Epoch int64
	// MergeSrc is a reference device (PVR_MERGE_SRC): a pvr checkout or
	// export whose non-bsp keys replace the recipe's containers, or a
	// clone URL (a device's, its bare IP, a Hub trail's) cloned first.
	MergeSrc string
	// Offline skips apt-get update (the cached indexes are used).
	Offline bool
	// PvsCertPEM is PV_PVS_CERT_PEM: the CA certificate(s) the device
	// trusts, /etc/pantavisor/pvs/trust/ca-certificates.crt in the
	// initrd; "" means the developer CA (ca/README.md).
	PvsCertPEM string
	// PvsPubPEM is PV_PVS_PUB_PEM: public key(s) for signatures without
	// x5c, /etc/pantavisor/pvs/trust/pub.pem; "" ships none.
	PvsPubPEM string
	// SigKey and SigX5C are PVR_SIG_KEY and PVR_X5C_PATH: the key and
	// certificate chain trails/0 is signed with; "" means the developer
	// signer of ca/developer.
	SigKey, SigX5C string
	// Until stops the build after the named stage (see Stages); empty
	// runs them all.
	Until string
	// UseSrcBSP is PVR_USE_SRC_BSP=yes: trails/0 takes the BSP (kernel,
	// initrd, volumes, run.json) of MergeSrc instead of building one.
	UseSrcBSP bool
	// AutoTok is PV_FACTORY_AUTOTOK: the factory pantahub.config gets
	// factory.autotok=<AutoTok>, so a new device claims itself.
	AutoTok string
	// MergeSBOM is PV_MERGE_SBOM: an SPDX JSON document, or a directory
	// of them, merged into the image's SBOM.
	MergeSBOM string
	// Debug is PANTAVISOR_DEBUG: "yes" adds the debug addon to the recipe's
	// addons, "no" removes it, "" keeps the recipe's choice.
	Debug string
	// Progress receives one line per stage.
	Progress io.Writer
	Log      *slog.Logger
}

// Stages are the pipeline's stages, in order: a stage needs only stages
// before it (stageNeeds), Until stops after one of them, and Result.Steps
// lists them in this order, whichever finished first.
var Stages = []string{"signing keys", "packages", "runtime", "initrd", "addons", "bsp", "containers", "trails/0", "sbom", "image", "pvr export"}

// stageNeeds are the stages each stage waits for (see needs).
var stageNeeds = map[string][]string{
	"packages":   {"signing keys"},
	"runtime":    {"packages"},
	"initrd":     {"packages", "runtime"},
	"addons":     {"packages"},
	"bsp":        {"packages"},
	"containers": {"packages", "runtime"},
	"trails/0":   {"initrd", "addons", "bsp", "containers"},
	"sbom":       {"trails/0"},
	"image":      {"trails/0"},
	"pvr export": {"image", "sbom"},
}

// DebugAddon is the addon PANTAVISOR_DEBUG adds or removes.
const DebugAddon = "debug"

// Step is the timing of one stage.
type Step struct {
	Name     string
	Duration time.Duration
	Note     string
}

// Result describes what a build wrote.
type Result struct {
	Recipe *recipe.Recipe
	// Image is the flashable image (empty for appengine targets).
	Image string
	// Pvr is the BSP update tarball <target>.pvr.tgz.
	Pvr string
	// SBOM is the SPDX document <target>.spdx.json.
	SBOM string
	// Storage is the staged storage tree (trails/0, objects, boot, config).
	Storage string
	// Sizes of the main artifacts in bytes, by name.
	Sizes map[string]int64
	Steps []Step
	// Notes lists what the build could not do (honestly reported).
	Notes []string
}

type run struct {
	// mu guards what stages running side by side share: Progress, and
	// res's Notes and Sizes (setSize).
	mu    sync.Mutex
	o     Options
	r     *recipe.Recipe
	arch  arch.Arch // the facts of r.Arch
	work  string
	res   *Result
	start time.Time
	// modDepText is the full modules.dep computed for the kernel.
	modDepText []byte
	// state is the factory revision once written.
	state *state.State
	// cpus are the CPUs the compressor programs of stages running side
	// by side share (take).
	cpus *cpus.Pool
	// waits are how long each stage waited for CPUs (take), under mu.
	waits map[string]*wait
	// cgoEnv is the cgo setup of the runtime stage (cross: CC and the
	// sysroot's pkg-config lxc; native: nil), reused by the App Engine
	// package.
	cgoEnv []string
}

// step runs one stage and prints its start and its end ("<name> done in
// <duration> <note>": bench/lib.sh reads these lines).
func (b *run) step(name string, fn func() (string, error)) (Step, error) {
	t := time.Now()
	b.progress("==> %-22s ...\n", name)
	note, err := fn()
	d := time.Since(t)
	b.mu.Lock()
	// its duration includes that wait: a stage that waited long did not
	// take long by itself
	if w := b.waits[name]; w != nil && w.total >= time.Millisecond {
		note += fmt.Sprintf(" (%s of it waiting for CPUs)", w.total.Round(time.Millisecond))
	}
	b.mu.Unlock()
	st := Step{Name: name, Duration: d, Note: note}
	if err != nil {
		b.progress("    %s FAILED after %s: %v\n", name, d.Round(time.Millisecond), err)
		return st, fmt.Errorf("%s: %w", name, err)
	}
	b.progress("    %s done in %s %s\n", name, d.Round(time.Millisecond), note)
	return st, nil
}

// needs are the stages the named stage waits for: stageNeeds, but the
// runtime of a native build links the host's liblxc, not the target
// sysroot's, so it builds while the packages unpack; and the rpiab boot
// image of the bsp stage holds the initrd and its addons.
func (b *run) needs(name string) []string {
	switch {
	case name == "runtime" && b.arch.Native():
		return []string{"signing keys"}
	case name == "bsp" && b.r.Bootloader.Type == recipe.BootRpiAB:
		return append(slices.Clone(stageNeeds[name]), "initrd", "addons")
	}
	return stageNeeds[name]
}

// stage is one stage of a build: fn nil skips it.
type stage struct {
	name string
	fn   func() (string, error)
}

// runStages runs the stages, each in its own goroutine once the stages
// it needs (stageNeeds) are done. The first failure cancels ctx
// (cancel): stages not started yet are skipped, running ones stop where
// they look at ctx. It returns once every stage has ended, with the
// first failure; the steps are recorded in the order of stages.
func (b *run) runStages(ctx context.Context, cancel context.CancelFunc, stages []stage) error {
	done := map[string]chan struct{}{}
	for _, s := range stages {
		done[s.name] = make(chan struct{})
	}
	for _, s := range stages {
		for _, n := range b.needs(s.name) {
			if done[n] == nil {
				return fmt.Errorf("builder: stage %q needs %q, which is not a stage", s.name, n)
			}
		}
	}
	steps := make([]*Step, len(stages))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i, s := range stages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[s.name])
			for _, n := range b.needs(s.name) {
				<-done[n]
			}
			if s.fn == nil || ctx.Err() != nil {
				return
			}
			st, err := b.step(s.name, s.fn)
			mu.Lock()
			defer mu.Unlock()
			steps[i] = &st
			if err != nil && first == nil {
				first = err
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, st := range steps {
		if st != nil {
			b.res.Steps = append(b.res.Steps, *st)
		}
	}
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

func (b *run) progress(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.o.Progress, format, args...)
}

func (b *run) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Notes = append(b.res.Notes, n)
	fmt.Fprintf(b.o.Progress, "    note: %s\n", n)
}

// take waits for CPUs for a compressor program of the named stage: one,
// and any others free; stages earlier in Stages are served first (the
// initrd's before the containers': the initrd is on the critical path).
func (b *run) take(ctx context.Context, stage string) (int, func(), error) {
	b.mu.Lock()
	if b.waits == nil {
		b.waits = map[string]*wait{}
	}
	w := b.waits[stage]
	if w == nil {
		w = &wait{}
		b.waits[stage] = w
	}
	if w.n == 0 {
		w.since = time.Now()
	}
	w.n++
	b.mu.Unlock()
	n, release, err := b.cpus.Take(ctx, slices.Index(Stages, stage), runtime.NumCPU())
	b.mu.Lock()
	if w.n--; w.n == 0 {
		w.total += time.Since(w.since)
	}
	b.mu.Unlock()
	return n, release, err
}

// wait is the time during which a stage had a request for CPUs waiting
// (its containers wait side by side: the time is counted once).
type wait struct {
	n     int
	since time.Time
	total time.Duration
}

// setSize records the size of an artifact (Result.Sizes).
func (b *run) setSize(name string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Sizes[name] = n
}

// loadRecipe is a copy of o.Recipe, validated, or targets/<Target>.toml.
func loadRecipe(o Options) (*recipe.Recipe, error) {
	if o.Recipe == nil {
		return recipe.Load(filepath.Join(o.Repo, "targets", o.Target+".toml"))
	}
	r := *o.Recipe
	r.Addons = slices.Clone(r.Addons)
	r.Containers = slices.Clone(r.Containers)
	recipe.Defaults(&r)
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	return &r, nil
}

// Build runs the pipeline for o.Target (or o.Recipe).
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Init == "" {
		o.Init = InitPantavisor
	}
	if o.Init != InitPantavisor && o.Init != InitSmoke {
		return nil, fmt.Errorf("init %q: want pantavisor or smoke", o.Init)
	}
	if o.Until != "" && !slices.Contains(Stages, o.Until) {
		return nil, fmt.Errorf("until %q: want one of %s", o.Until, strings.Join(Stages, ", "))
	}
	if o.Debug != "" && o.Debug != "yes" && o.Debug != "no" {
		return nil, fmt.Errorf("PANTAVISOR_DEBUG %q: want yes or no", o.Debug)
	}
	mergeURL := mergeRemote(o.MergeSrc)
	for _, p := range []*string{&o.Repo, &o.Out, &o.Cache, &o.MergeSrc, &o.MergeSBOM} {
		if *p == "" || container.IsRemote(*p) || p == &o.MergeSrc && mergeURL != "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	if o.MergeSrc != "" && mergeURL == "" {
		if err := container.CheckSource(o.MergeSrc); err != nil {
			return nil, fmt.Errorf("PVR_MERGE_SRC: %w", err)
		}
	}
	if o.Target == "" && o.Recipe != nil {
		o.Target = o.Recipe.Name
	}
	r, err := loadRecipe(o)
	if err != nil {
		return nil, err
	}
	if o.UseSrcBSP && (o.MergeSrc == "" || r.InitMode == recipe.ModeAppengine) {
		return nil, fmt.Errorf("PVR_USE_SRC_BSP=yes: needs PVR_MERGE_SRC and an image target (App Engine packages have no BSP)")
	}
	if o.AutoTok != "" {
		if err := checkAutoTok(o.AutoTok); err != nil {
			return nil, err
		}
		if r.InitMode == recipe.ModeAppengine {
			return nil, fmt.Errorf("PV_FACTORY_AUTOTOK: not supported for App Engine packages (%s): they ship no factory storage; set factory.autotok in the host's pantahub.config", o.Target)
		}
	}
	switch {
	case o.Debug == "yes" && !slices.Contains(r.Addons, DebugAddon):
		r.Addons = append(r.Addons, DebugAddon)
	case o.Debug == "no":
		r.Addons = slices.DeleteFunc(r.Addons, func(a string) bool { return a == DebugAddon })
	}
	if o.Out == "" {
		o.Out = filepath.Join(o.Repo, "out", o.Target)
	}
	if o.Cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("cache directory: %w", err)
		}
		o.Cache = filepath.Join(dir, "pantavisor-mkimage")
	}
	a, err := arch.Lookup(r.Arch)
	if err != nil {
		return nil, err
	}
	if r.InitMode == recipe.ModeEmbedded {
		// the boot loader's part of the recipe, before anything is built
		if _, err := boot.Lookup(r); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Target, err)
		}
	}
	b := &run{o: o, r: r, arch: a, work: filepath.Join(o.Out, "work"), res: &Result{Recipe: r, Sizes: map[string]int64{}}, start: time.Now(),
		cpus: cpus.New(runtime.NumCPU())}
	if err := cleanWork(b.work); err != nil {
		return nil, err
	}
	for _, d := range []string{b.work, o.Cache, filepath.Join(b.work, "bsp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if mergeURL != "" {
		// cloned before any stage: a device that cannot be reached stops
		// the build before anything is built
		if b.o.MergeSrc, err = b.cloneMergeSrc(ctx, mergeURL); err != nil {
			return nil, fmt.Errorf("PVR_MERGE_SRC: %w", err)
		}
	}
	// the first stage to fail stops the others (runStages)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		pk   *packages
		bin  *binaries
		bsp  *bspFiles
		ents container.Entries
		cnt  string
		doc  *spdx.Document
	)
	stages := []stage{
		{"signing keys", b.checkSigning},
		{"packages", func() (n string, err error) { pk, n, err = b.fetch(ctx); return }},
		{"runtime", func() (n string, err error) {
			sysroot := ""
			if !a.Native() {
				sysroot = pk.Sysroot
			}
			bin, n, err = b.buildRuntime(ctx, sysroot)
			return
		}},
		{"initrd", func() (string, error) { return b.makeInitrd(ctx, pk, bin) }},
		{"addons", func() (string, error) { return b.makeAddons(ctx, pk) }},
		{"bsp", func() (n string, err error) { bsp, n, err = b.makeBSP(ctx, pk); return }},
		{"containers", func() (n string, err error) { ents, cnt, err = b.makeContainers(ctx, pk, bin); return }},
		{"trails/0", func() (string, error) { return b.writeStorage(bsp, ents, cnt) }},
		{"sbom", func() (n string, err error) { doc, n, err = b.makeSBOM(ctx, pk, bin); return }},
		{"image", func() (string, error) { return b.makeImage(ctx) }},
		{"pvr export", func() (string, error) { return b.export() }},
	}
	until := len(stages) - 1
	for i := range stages {
		s := &stages[i]
		if s.name != Stages[i] {
			return nil, fmt.Errorf("builder: stage %d is %q, Stages says %q", i, s.name, Stages[i])
		}
		if s.name == o.Until {
			until = i
		}
		if r.InitMode == recipe.ModeAppengine {
			switch s.name {
			case "initrd", "addons", "image":
				s.fn = nil // the host boots; Pantavisor runs as a daemon
			case "bsp":
				bsp, s.fn = &bspFiles{}, nil
			case "pvr export":
				s.fn = func() (string, error) {
					n, err := b.appengineBundle(ctx)
					if err != nil {
						return n, err
					}
					sn, err := b.appengineSBOM(doc) // Assemble replaced the output directory
					return n + " " + sn, err
				}
			}
		}
		if o.UseSrcBSP {
			switch s.name {
			case "initrd", "addons":
				s.fn = nil // the BSP of PVR_MERGE_SRC brings them
			case "bsp":
				s.fn = func() (n string, err error) { bsp, n, err = b.sourceBSP(); return }
			}
		}
	}
	for i := until + 1; i < len(stages); i++ {
		stages[i].fn = nil
	}
	if err := b.runStages(ctx, cancel, stages); err != nil {
		if merr := markFailed(r, o.Out, err); merr != nil {
			b.note("marking the failed build in %s: %v", o.Out, merr)
		}
		return b.res, err
	}
	if o.Until != "" {
		fmt.Fprintf(o.Progress, "==> %s: stopped after %s, in %s\n", r.Name, o.Until, time.Since(b.start).Round(time.Millisecond))
		return b.res, nil
	}
	if err := os.Remove(filepath.Join(o.Out, FailedName)); err != nil && !os.IsNotExist(err) {
		return b.res, err
	}
	fmt.Fprintf(o.Progress, "==> built %s in %s\n", r.Name, time.Since(b.start).Round(time.Millisecond))
	return b.res, nil
}

func size(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
