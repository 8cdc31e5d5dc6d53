package kmod

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A slice of a real Debian 6.1 amd64 module directory, as depmod writes it.
const (
	modulesDep = `kernel/fs/ext4/ext4.ko: kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko: kernel/lib/crc16.ko
kernel/drivers/block/virtio_blk.ko.xz:
kernel/fs/overlayfs/overlay.ko:
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko: kernel/drivers/pps/pps_core.ko kernel/drivers/ptp/ptp.ko
kernel/drivers/ptp/ptp.ko: kernel/drivers/pps/pps_core.ko
kernel/drivers/pps/pps_core.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/net/ipv6/ipv6.ko:
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/input/evdev.ko:
kernel/drivers/watchdog/i6300esb.ko:
`
	modulesAlias = `# Aliases extracted from modules themselves.
alias fs-overlay overlay
alias net-pf-10 ipv6
alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_pci
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias devname:vda virtio_blk
alias virtio:d00000002v* virtio_blk
alias fs-ext4 ext4
alias ext3 ext4
alias fs-ext2 ext4
alias cpu:type:x86,ven*fam*mod*:feature:*0094* crc16
alias input:b*v*p*e*-e*k*r*a*m*l*s*f*w* evdev
alias pci:v00008086d000025ABsv*sd*bc*sc*i* i6300esb
`
	modulesBuiltin = "kernel/fs/squashfs/squashfs.ko\nkernel/drivers/block/loop.ko\n"
	builtinModinfo = "squashfs.description=squashfs\x00squashfs.alias=fs-squashfs\x00loop.alias=devname:loop-control\x00loop.alias=block-major-7-*\x00loop.max_loop=int\x00"
	modulesSoftdep = "# soft\nsoftdep ext4 pre: crc32c\nsoftdep virtio_net pre: net-pf-10 post: e1000\n"
)

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testIndex(t *testing.T) *Index {
	t.Helper()
	dir := writeDir(t, map[string]string{"modules.dep": modulesDep, "modules.alias": modulesAlias,
		"modules.builtin": modulesBuiltin, "modules.builtin.modinfo": builtinModinfo, "modules.softdep": modulesSoftdep})
	idx, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/fs/ext4/ext4.ko": "ext4", "virtio-blk": "virtio_blk", "a/b/crc32c-intel.ko.xz": "crc32c_intel",
		"x.ko.zst": "x", "y.ko.gz": "y", "plain": "plain",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"pci:v00008086d000010D3sv*sd*bc*sc*i*", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", true},
		{"pci:v00008086d000010D3sv*sd*bc*sc*i*", "pci:v00008086d000010D4sv00008086sd0000A01Fbc02sc00i00", false},
		{"usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00", true},
		{"virtio:d00000001v*", "virtio:d00000001v00001AF4", true},
		{"virtio:d00000001v*", "virtio:d00000010v00001AF4", false},
		{"a?c", "abc", true}, {"a?c", "ac", false},
		{"[abc]x", "bx", true}, {"[!abc]x", "bx", false}, {"[^abc]x", "dx", true},
		{"[a-f]1", "e1", true}, {"[a-f]1", "g1", false}, {"[]]", "]", true},
		{"of:N*T*Cfsl,imx6q-uart", "of:NserialT(null)Cfsl,imx6q-uart", true},
		{"*", "", true}, {"", "", true}, {"", "x", false}, {"a*", "a/b", true},
		{`a\*`, "a*", true}, {`a\*`, "ab", false}, {"[ab", "[ab", true}, {"x[", "x", false},
		{"*a*b*c*", "zzazzbzzczz", true}, {"*a*b*c*", "zzazzczzbzz", false},
	} {
		if got := match(c.p, c.s); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func TestParseDepOrder(t *testing.T) {
	m, err := ParseDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	files, missing := m.Order([]string{"ext4", "virtio-blk", "virtio_pci_legacy", "crc16"})
	want := []string{"kernel/lib/crc16.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko", "kernel/fs/ext4/ext4.ko", "kernel/drivers/block/virtio_blk.ko.xz"}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("Order() files = %v, want %v", files, want)
	}
	if !reflect.DeepEqual(missing, []string{"virtio_pci_legacy"}) {
		t.Errorf("Order() missing = %v, want [virtio_pci_legacy]", missing)
	}
	// A line listing its dependencies nearest-first still loads them
	// dependencies-first: b needs c, a needs both.
	m, _ = ParseDep(strings.NewReader("a.ko: b.ko c.ko\nb.ko: c.ko\nc.ko:\n"))
	if files, _ := m.Order([]string{"a"}); !reflect.DeepEqual(files, []string{"c.ko", "b.ko", "a.ko"}) {
		t.Errorf("Order(a) = %v, want [c.ko b.ko a.ko]", files)
	}
	for _, bad := range []string{"../x.ko:\n", "/abs.ko:\n", "a.ko: ../b.ko\n", "no colon\n", ":\n"} {
		if _, err := ParseDep(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseDep(%q) = nil error", bad)
		}
	}
}

func TestParseAlias(t *testing.T) {
	as, err := ParseAlias(strings.NewReader(modulesAlias + "options e1000e x=1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 15 || as[0] != (Alias{"fs-overlay", "overlay"}) {
		t.Errorf("ParseAlias() = %d aliases, first %v; want 15, {fs-overlay overlay}", len(as), as[0])
	}
	if _, err := ParseAlias(strings.NewReader("alias onlypattern\n")); err == nil {
		t.Errorf("ParseAlias(two fields) = nil error")
	}
}

func TestLookup(t *testing.T) {
	idx := testIndex(t)
	for _, c := range []struct {
		name    string
		mods    []string
		builtin bool
		err     error
	}{
		{"e1000e", []string{"e1000e"}, false, nil},
		{"virtio-blk", []string{"virtio_blk"}, false, nil},
		{"fs-overlay", []string{"overlay"}, false, nil},
		{"fs_overlay", []string{"overlay"}, false, nil},
		{"net-pf-10", []string{"ipv6"}, false, nil},
		{"ext3", []string{"ext4"}, false, nil},
		{"pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", []string{"e1000e"}, false, nil},
		{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", []string{"virtio_pci"}, false, nil},
		{"virtio:d00000001v00001AF4", []string{"virtio_net"}, false, nil},
		{"squashfs", nil, true, nil},
		{"fs-squashfs", nil, true, nil},
		{"block-major-7-0", nil, true, nil},
		{"no_such_module", nil, false, ErrNotFound},
		{"pci:v0000DEADd0000BEEFsv*", nil, false, ErrNotFound},
	} {
		mods, builtin, err := idx.Lookup(c.name)
		if !reflect.DeepEqual(mods, c.mods) || builtin != c.builtin || !errors.Is(err, c.err) {
			t.Errorf("Lookup(%q) = %v, %v, %v; want %v, %v, %v", c.name, mods, builtin, err, c.mods, c.builtin, c.err)
		}
	}
}

func TestPlanSoftdep(t *testing.T) {
	idx := testIndex(t)
	// ext4's soft "pre: crc32c" does not exist here and is skipped;
	// virtio_net wants ipv6 before it and e1000 after it.
	got := idx.Plan([]string{"virtio_net", "ext4"})
	want := []string{"kernel/net/ipv6/ipv6.ko", "kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
		"kernel/lib/crc16.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko", "kernel/fs/ext4/ext4.ko"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Plan(virtio_net, ext4) = %v, want %v", got, want)
	}
	sd, err := ParseSoftdep(strings.NewReader("softdep cifs gcm\nsoftdep ext4 pre: crypto-crc32c\nsoftdep ext4 pre: x post: y\n"))
	if want := map[string]Softdep{"cifs": {}, "ext4": {Pre: []string{"crypto-crc32c", "x"}, Post: []string{"y"}}}; err != nil || !reflect.DeepEqual(sd, want) {
		t.Errorf("ParseSoftdep() = %v, %v; want %v", sd, err, want)
	}
	if _, err := ParseSoftdep(strings.NewReader("softdep lonely\n")); err == nil {
		t.Errorf("ParseSoftdep(no dependencies) = nil error")
	}
}

// fakeKernel records finit_module calls and answers like the kernel.
type fakeKernel struct {
	mu     sync.Mutex
	calls  []string
	errs   map[string]error // by module name
	onLoad func(name string)
}

func (k *fakeKernel) load(path, params string) error {
	n := Name(path)
	k.mu.Lock()
	k.calls = append(k.calls, strings.TrimSpace(n+" "+params))
	k.mu.Unlock()
	if err := k.errs[n]; err != nil {
		return &fs.PathError{Op: "finit_module", Path: path, Err: err}
	}
	if k.onLoad != nil {
		k.onLoad(n)
	}
	return nil
}

func testLoader(t *testing.T, k *fakeKernel) (*Loader, string) {
	t.Helper()
	l := NewLoader(testIndex(t), slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	l.Sys = t.TempDir()
	l.load = k.load
	return l, l.Sys
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestProbe(t *testing.T) {
	k := &fakeKernel{}
	l, sys := testLoader(t, k)
	// pps_core is already in the kernel.
	os.MkdirAll(filepath.Join(sys, "module", "pps_core"), 0o755)
	os.WriteFile(filepath.Join(sys, "module", "pps_core", "initstate"), []byte("live\n"), 0o444)
	l.UseCmdline("console=ttyS0 e1000e.InterruptThrottleRate=1 ptp.x=y modprobe.blacklist=e1000,virtio-net")
	got, err := l.Probe("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", "debug=2", false)
	if want := []string{"ptp", "e1000e"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Probe(e1000e modalias) = %v, %v; want %v", got, err, want)
	}
	if want := []string{"ptp x=y", "e1000e InterruptThrottleRate=1 debug=2"}; !reflect.DeepEqual(k.calls, want) {
		t.Errorf("finit_module calls = %q, want %q", k.calls, want)
	}
	if got, err := l.Probe("e1000e", "", false); err != nil || got != nil {
		t.Errorf("Probe(e1000e again) = %v, %v; want nothing loaded", got, err)
	}
	if got, err := l.Probe("squashfs", "", false); err != nil || got != nil {
		t.Errorf("Probe(built-in squashfs) = %v, %v; want nothing, nil", got, err)
	}
	if _, err := l.Probe("nope", "", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("Probe(nope) = %v, want ErrNotFound", err)
	}
	if _, err := l.Probe("virtio:d00000001v00001AF4", "", true); err == nil {
		t.Errorf("Probe(-b blacklisted virtio_net) = nil error")
	}
	if !l.Blacklist["virtio_net"] || !l.Blacklist["e1000"] {
		t.Errorf("Blacklist = %v, want e1000 and virtio_net", l.Blacklist)
	}
}

func TestLoadAllErrors(t *testing.T) {
	// Real finit_module on files that are not there: the error names the
	// file, the others are still tried.
	dir := writeDir(t, map[string]string{"modules.dep": "kernel/x.ko:\nkernel/y.ko:\n"})
	idx, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLoader(idx, nil)
	l.Sys = t.TempDir()
	got, err := l.LoadAll([]string{"x", "notthere", "y"})
	if len(got) != 0 || err == nil || !strings.Contains(err.Error(), "kernel/x.ko") {
		t.Errorf("LoadAll(missing files) = %v, %v; want an error naming kernel/x.ko", got, err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(no modules.dep) = %v, want ErrNotExist", err)
	}
	bad := writeDir(t, map[string]string{"modules.dep": "a.ko:\n", "modules.alias": "alias x\n"})
	if _, err := Open(bad); err == nil {
		t.Errorf("Open(bad modules.alias) = nil error")
	}
}

func TestColdplug(t *testing.T) {
	k := &fakeKernel{}
	l, sys := testLoader(t, k)
	dev := func(bus, name, alias string) {
		d := filepath.Join(sys, "bus", bus, "devices", name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "modalias"), []byte(alias+"\n"), 0o444)
	}
	dev("pci", "0000:00:02.0", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00")
	dev("pci", "0000:00:03.0", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00")
	dev("pci", "0000:00:04.0", "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00")
	dev("platform", "serial8250", "platform:serial8250")
	// a watchdog: its driver comes first, whatever its modalias' rank
	dev("pci", "0000:00:05.0", "pci:v00008086d000025ABsv00001AF4sd00001100bc08sc80i00")
	// A class device (input) is on no bus.
	os.MkdirAll(filepath.Join(sys, "class", "input", "input2"), 0o755)
	os.WriteFile(filepath.Join(sys, "class", "input", "input2", "modalias"), []byte("input:b0019v0000p0001e0000-e0,1,k74,ramlsfw\n"), 0o444)
	// virtio_pci brings up the virtio device virtio_net drives.
	k.onLoad = func(n string) {
		if n == "virtio_pci" {
			dev("virtio", "virtio0", "virtio:d00000001v00001AF4")
		}
	}
	var told []string
	l.OnLoad = func(n string) { told = append(told, n) }
	got, err := l.Coldplug()
	// watchdog, then the NIC's driver, then the rest
	want := []string{"i6300esb", "pps_core", "ptp", "e1000e", "evdev", "virtio_pci_modern_dev", "virtio_pci", "ipv6", "failover", "net_failover", "virtio_net", "e1000"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Coldplug() = %v, %v; want %v", got, err, want)
	}
	if !reflect.DeepEqual(told, want) {
		t.Errorf("OnLoad was told %v, want %v", told, want)
	}
	if got, _ := l.Coldplug(); len(got) != 0 {
		t.Errorf("Coldplug() again = %v, want nothing", got)
	}
}

func TestColdplugParallel(t *testing.T) {
	k := &fakeKernel{}
	l, sys := testLoader(t, k)
	l.Parallel = true
	dev := func(bus, name, alias string) {
		d := filepath.Join(sys, "bus", bus, "devices", name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "modalias"), []byte(alias+"\n"), 0o444)
	}
	dev("pci", "0000:00:02.0", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00")
	dev("pci", "0000:00:03.0", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00")
	dev("pci", "0000:00:04.0", "pci:v00008086d0000100Esv00008086sd0000A01Fbc02sc00i00")
	// e1000e's probe (AHCI's, on a PC) takes until the virtio device
	// virtio_pci brings up has its driver: one module at a time, it
	// would never end.
	virtioNet := make(chan struct{})
	k.onLoad = func(n string) {
		switch n {
		case "virtio_pci":
			dev("virtio", "virtio0", "virtio:d00000001v00001AF4")
		case "e1000e":
			select {
			case <-virtioNet:
			case <-time.After(10 * time.Second):
				t.Error("e1000e's load held up virtio_net's")
			}
		case "virtio_net":
			close(virtioNet)
		}
	}
	got, err := l.Coldplug()
	slices.Sort(got)
	want := []string{"e1000", "e1000e", "failover", "ipv6", "net_failover", "pps_core", "ptp", "virtio_net", "virtio_pci", "virtio_pci_modern_dev"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Coldplug() = %v, %v; want %v", got, err, want)
	}
	// e1000 is virtio_net's soft dependency and a driver of its own:
	// loaded once all the same.
	calls := slices.Clone(k.calls)
	slices.Sort(calls)
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("finit_module calls = %q, want each of %q once", calls, want)
	}
}

func TestLoadWaitsForLoadInFlight(t *testing.T) {
	k := &fakeKernel{}
	l, _ := testLoader(t, k)
	l.Parallel = true
	release := make(chan struct{})
	k.onLoad = func(n string) {
		if n == "crc16" {
			<-release
		}
	}
	var told sync.Map
	l.OnLoad = func(n string) { told.Store(n, true) }
	first := make(chan error)
	go func() { _, err := l.LoadAll([]string{"crc16"}); first <- err }()
	for !busy(l, "crc16") {
		time.Sleep(time.Millisecond)
	}
	second := make(chan []string)
	go func() { got, _ := l.Probe("fs-ext4", "", false); second <- got }()
	select {
	case got := <-second:
		t.Fatalf("Probe(ext4) = %v while its dependency crc16 was still loading", got)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got, want := <-second, []string{"jbd2", "mbcache", "ext4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Probe(ext4) = %v, want %v (crc16 loaded by the other)", got, want)
	}
	if n := strings.Count(strings.Join(k.calls, ","), "crc16"); n != 1 {
		t.Errorf("crc16 loaded %d times, want 1: %q", n, k.calls)
	}
	if _, ok := told.Load("crc16"); !ok || !l.Loaded("ext4") {
		t.Errorf("OnLoad not told crc16, or ext4 not loaded")
	}
}

func TestParallelJobs(t *testing.T) {
	k := &fakeKernel{}
	l, _ := testLoader(t, k)
	l.Parallel, l.Jobs = true, 2
	var mu sync.Mutex
	inFlight, most := 0, 0
	l.load = func(path, params string) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return k.load(path, params)
	}
	got, err := l.LoadAll([]string{"e1000e", "virtio_net", "ext4", "evdev", "i6300esb", "overlay"})
	if err != nil || len(got) != 15 {
		t.Errorf("LoadAll = %v, %v; want 15 modules", got, err)
	}
	if most != 2 {
		t.Errorf("at most %d loads in flight, want Jobs = 2", most)
	}
}

// busy reports whether a load of module name is in flight.
func busy(l *Loader, name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.busy[name]
	return ok
}

func TestModprobe(t *testing.T) {
	dir := writeDir(t, map[string]string{"lib/modules/6.1.0-50-amd64/modules.dep": modulesDep,
		"lib/modules/6.1.0-50-amd64/modules.alias": modulesAlias})
	moddir := filepath.Join(dir, "lib/modules/6.1.0-50-amd64")
	for _, c := range []struct {
		args          []string
		calls         []string
		stdout, isErr string
		err           error
	}{
		{args: []string{"-q", "--", "fs-overlay"}, calls: []string{"overlay"}},
		{args: []string{"e1000e", "debug=1", "x=2"}, calls: []string{"pps_core", "ptp", "e1000e debug=1 x=2"}},
		{args: []string{"-qa", "virtio_net", "net-pf-10"}, calls: []string{"failover", "net_failover", "virtio_net", "ipv6"}},
		{args: []string{"--show-depends", "ext4"}, stdout: "insmod " + moddir + "/kernel/lib/crc16.ko\ninsmod " + moddir + "/kernel/fs/jbd2/jbd2.ko\ninsmod " + moddir + "/kernel/fs/mbcache.ko\ninsmod " + moddir + "/kernel/fs/ext4/ext4.ko\n"},
		{args: []string{"-n", "ext4"}},
		{args: []string{"-v", "overlay"}, calls: []string{"overlay"}, stdout: "loaded overlay\n"},
		{args: []string{"-q", "--", "no-such"}, err: ErrNotFound},
		{args: []string{"no-such"}, err: ErrNotFound},
		{args: []string{"-x", "e1000e"}, err: ErrUsage},
		{args: []string{"-q"}, err: ErrUsage},
		{args: []string{"-d"}, err: ErrUsage},
	} {
		k := &fakeKernel{}
		var stdout, stderr bytes.Buffer
		env := modprobeEnv{sys: t.TempDir(), cmdline: "quiet", release: func() (string, error) { return "6.1.0-50-amd64", nil }, load: k.load}
		err := modprobe(append([]string{"-d", dir}, c.args...), &stdout, &stderr, env)
		if !errors.Is(err, c.err) || !reflect.DeepEqual(k.calls, c.calls) || stdout.String() != c.stdout || stderr.String() != c.isErr {
			t.Errorf("modprobe %q = %v, calls %q, stdout %q, stderr %q; want %v, %q, %q, %q",
				c.args, err, k.calls, stdout.String(), stderr.String(), c.err, c.calls, c.stdout, c.isErr)
		}
	}
	// A request that loads modules leaves one line in the kernel log.
	kmsg := filepath.Join(t.TempDir(), "kmsg")
	os.WriteFile(kmsg, nil, 0o644)
	k := &fakeKernel{}
	err := modprobe([]string{"-d", dir, "-q", "--", "fs-overlay"}, io.Discard, io.Discard,
		modprobeEnv{sys: t.TempDir(), release: func() (string, error) { return "6.1.0-50-amd64", nil }, load: k.load, kmsg: kmsg})
	if b, _ := os.ReadFile(kmsg); err != nil || string(b) != "<6>modprobe: fs-overlay: loaded overlay\n" {
		t.Errorf("modprobe -q -- fs-overlay = %v, kernel log %q", err, b)
	}
	// -q: exit status 1 without a message from the multi-call main.
	env := modprobeEnv{sys: t.TempDir(), release: func() (string, error) { return "6.1.0-50-amd64", nil }}
	var coded interface{ ExitCode() int }
	if err := modprobe([]string{"-d", dir, "-q", "no-such"}, io.Discard, io.Discard, env); !errors.As(err, &coded) || coded.ExitCode() != 1 {
		t.Errorf("modprobe -q no-such = %v, want an error with ExitCode 1", err)
	}
	if err := modprobe([]string{"-d", dir, "no-such"}, io.Discard, io.Discard, env); errors.As(err, &coded) {
		t.Errorf("modprobe no-such = %v, want a plain error (main prints it)", err)
	}
	// -S and --dirname=: a release without a module directory.
	err = modprobe([]string{"--dirname=" + dir, "-S", "9.9", "x"}, &bytes.Buffer{}, &bytes.Buffer{}, modprobeEnv{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("modprobe -S 9.9 = %v, want ErrNotExist", err)
	}
}

// Modprobe has the applet type of the multi-call binary's table.
var _ func(context.Context, []string, io.Reader, io.Writer, io.Writer) error = Modprobe

func TestReadModuleLists(t *testing.T) {
	dir := writeDir(t, map[string]string{"b.conf": "ext4\n", "a.conf": "# comment\nvirtio_blk\n\n; x\nloop\n", "c.txt": "ignored\n"})
	got, err := ReadModuleLists(dir)
	if want := []string{"virtio_blk", "loop", "ext4"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadModuleLists() = %v, %v, want %v", got, err, want)
	}
}

func TestDeviceDriver(t *testing.T) {
	idx := testIndex(t)
	for name, want := range map[string]bool{"e1000e": true, "virtio-pci": true, "virtio_blk": true,
		"ext4": false, "overlay": false, "ipv6": false, "nope": false} {
		if got := idx.DeviceDriver(name); got != want {
			t.Errorf("DeviceDriver(%s) = %v, want %v", name, got, want)
		}
	}
}

// TestModprobePending: a request made while PendingFile marks the modules
// directory waits for the image mounted over it instead of failing
// against the initrd's modules.
func TestModprobePending(t *testing.T) {
	dir := writeDir(t, map[string]string{"lib/modules/6.1.0-50-amd64/modules.dep": "", "lib/modules/6.1.0-50-amd64/" + PendingFile: ""})
	moddir := filepath.Join(dir, "lib/modules/6.1.0-50-amd64")
	mounted := make(chan time.Time, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		os.WriteFile(filepath.Join(moddir, "modules.dep"), []byte(modulesDep), 0o644)
		os.WriteFile(filepath.Join(moddir, "modules.alias"), []byte(modulesAlias), 0o644)
		mounted <- time.Now()
		os.Remove(filepath.Join(moddir, PendingFile))
	}()
	k := &fakeKernel{}
	err := modprobe([]string{"-d", dir, "-q", "--", "fs-overlay"}, io.Discard, io.Discard,
		modprobeEnv{sys: t.TempDir(), release: func() (string, error) { return "6.1.0-50-amd64", nil }, load: k.load})
	done := time.Now()
	if err != nil || !reflect.DeepEqual(k.calls, []string{"overlay"}) {
		t.Fatalf("modprobe fs-overlay while pending = %v, calls %q; want overlay loaded", err, k.calls)
	}
	if at := <-mounted; done.Before(at) {
		t.Errorf("modprobe returned %v before the mount", at.Sub(done))
	}
}
