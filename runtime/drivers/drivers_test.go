package drivers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// fakeKernel records modprobe calls and keeps the set of loaded modules.
type fakeKernel struct {
	loaded map[string]bool
	calls  []string
	fail   map[string]bool
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{loaded: map[string]bool{}, fail: map[string]bool{}}
}

func (k *fakeKernel) Load(mod, params string) error {
	k.calls = append(k.calls, strings.TrimSpace("load "+mod+" "+params))
	if k.fail[mod] {
		return errors.New("no such module")
	}
	k.loaded[mod] = true
	return nil
}
func (k *fakeKernel) Unload(mod string) error {
	k.calls = append(k.calls, "unload "+mod)
	delete(k.loaded, mod)
	return nil
}
func (k *fakeKernel) Loaded(mod string) bool { return k.loaded[mod] }

func (k *fakeKernel) take() string {
	s := strings.Join(k.calls, "; ")
	k.calls = nil
	return s
}

var aliases = &state.Drivers{Sections: map[string]map[string][]string{
	"all": {
		"wifi":      {"iwlwifi ${user-meta:drivers.iwlwifi.opts}"},
		"bluetooth": {"hci_uart", "btintel ${device-meta:bt.opts} debug=1"},
		"net":       {"dummy numdummies=0"},
	},
	"dtb:broadcom/bcm2711-rpi-4-b.dtb": {
		"wifi": {"cfg80211", "brcmfmac ${user-meta:drivers.brcmfmac.opts}"},
	},
}}

func meta(kind, key string) (string, bool) {
	v, ok := map[string]string{
		"user-meta:drivers.iwlwifi.opts":  "power_save=true 11n_disable=1",
		"user-meta:drivers.brcmfmac.opts": "roamoff=1",
		"device-meta:bt.opts":             "enable_autosuspend=0",
	}[kind+":"+key]
	return v, ok
}

func TestSections(t *testing.T) {
	got := Sections("console=ttyS0 pv_bootloader.dtb=broadcom/bcm2711-rpi-4-b.dtb pv_bootloader.ovl=a.dtbo,b.dtbo pv_bootloader.dtb=", "conf-1")
	want := []string{"fitconfig:conf-1", "dtb:broadcom/bcm2711-rpi-4-b.dtb", "ovl:a.dtbo", "ovl:b.dtbo"}
	if !slices.Equal(got, want) {
		t.Errorf("Sections = %q, want %q", got, want)
	}
}

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		line, mod, params, err string
	}{
		{"iwlwifi ${user-meta:drivers.iwlwifi.opts}", "iwlwifi", "power_save=true 11n_disable=1", ""},
		{"iwlwifi  11n_disable=1 ", "iwlwifi", "11n_disable=1", ""},
		{"btintel ${device-meta:bt.opts} debug=1", "btintel", "enable_autosuspend=0 debug=1", ""},
		{"brcmfmac ${user-meta:missing}", "brcmfmac", "", ""},
		{"x a=${user-meta:drivers.brcmfmac.opts}", "x", "a=roamoff=1", ""},
		{"x ${user-meta:k", "", "", "unterminated"},
		{"x ${env:HOME}", "", "", "want ${user-meta:KEY}"},
		{"x ${user-meta:}", "", "", "want ${user-meta:KEY}"},
		{"   ", "", "", "no module"},
		{"../evil", "", "", "module name"},
	} {
		mod, params, err := Expand(tc.line, meta)
		if tc.err != "" {
			if !errors.Is(err, ErrLine) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Expand(%q) = %v, want an ErrLine with %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || mod != tc.mod || params != tc.params {
			t.Errorf("Expand(%q) = %q, %q, %v; want %q, %q", tc.line, mod, params, err, tc.mod, tc.params)
		}
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"iwlwifi ${user-meta:drivers.iwlwifi.opts}", "a ${device-meta:x} b=1", "${", "x ${user-meta:a}${user-meta:b}", "}{$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		mod, params, err := Expand(line, func(kind, key string) (string, bool) { return "v=" + key, true })
		if err != nil {
			return
		}
		if mod == "" || strings.ContainsAny(mod, " \t\n/=") || strings.Contains(params, "\n") {
			t.Fatalf("Expand(%q) = %q, %q", line, mod, params)
		}
	})
}

func TestManager(t *testing.T) {
	k := newFakeKernel()
	m := New(Options{Kernel: k, Meta: meta})
	m.SetRevision(aliases, nil)
	app := state.DriverRefs{Required: []string{"net"}, Optional: []string{"bluetooth", "gps"}, Manual: []string{"wifi"}}
	other := state.DriverRefs{Required: []string{"net"}}

	if err := m.Ensure("app", app); err != nil {
		t.Fatalf("Ensure(app) = %v", err)
	}
	if got, want := k.take(), "load dummy numdummies=0; load hci_uart; load btintel enable_autosuspend=0 debug=1"; got != want {
		t.Errorf("Ensure(app): %s, want %s", got, want)
	}
	status := func(refs state.DriverRefs) string {
		var s []string
		for _, d := range m.Status(refs) {
			s = append(s, fmt.Sprintf("%s/%s/%s", d.Name, d.Type, d.Status))
		}
		return strings.Join(s, " ")
	}
	if got, want := status(app), "net/REQUIRED/LOADED bluetooth/OPTIONAL/LOADED gps/OPTIONAL/UNKNOWN wifi/MANUAL/UNLOADED"; got != want {
		t.Errorf("Status = %s, want %s", got, want)
	}
	if err := m.Ensure("other", other); err != nil {
		t.Fatal(err)
	}
	k.take()
	// manual drivers: only those the container lists as manual
	if err := m.Manual("app", app, "net", true); !errors.Is(err, ErrNotManual) {
		t.Errorf("Manual(net) = %v, want ErrNotManual", err)
	}
	if err := m.Manual("app", app, "", true); err != nil {
		t.Fatal(err)
	}
	if got, want := k.take(), "load iwlwifi power_save=true 11n_disable=1"; got != want {
		t.Errorf("load all manual: %s, want %s", got, want)
	}
	if err := m.Manual("app", app, "wifi", false); err != nil {
		t.Fatal(err)
	}
	if got, want := k.take(), "unload iwlwifi"; got != want {
		t.Errorf("unload wifi: %s, want %s", got, want)
	}
	// app stops: bluetooth goes (reverse order), net stays for other
	m.Release("app")
	if got, want := k.take(), "unload btintel; unload hci_uart"; got != want {
		t.Errorf("Release(app): %s, want %s", got, want)
	}
	m.Release("other")
	if got, want := k.take(), "unload dummy"; got != want {
		t.Errorf("Release(other): %s, want %s", got, want)
	}
}

func TestManagerFailures(t *testing.T) {
	k := newFakeKernel()
	k.fail["hci_uart"] = true
	m := New(Options{Kernel: k, Meta: meta})
	m.SetRevision(aliases, nil)
	if err := m.Ensure("a", state.DriverRefs{Required: []string{"gps"}}); !errors.Is(err, ErrNotOffered) {
		t.Errorf("required alias not in the BSP: %v, want ErrNotOffered", err)
	}
	if err := m.Ensure("a", state.DriverRefs{Required: []string{"bluetooth"}}); err == nil || !strings.Contains(err.Error(), "hci_uart") {
		t.Errorf("required module failing: %v, want an error naming hci_uart", err)
	}
	if err := m.Ensure("a", state.DriverRefs{Optional: []string{"bluetooth", "gps"}}); err != nil {
		t.Errorf("optional failures: %v, want nil", err)
	}
	if err := New(Options{}).Ensure("a", state.DriverRefs{Required: []string{"net"}}); !errors.Is(err, ErrNotOffered) {
		t.Errorf("no revision: %v", err)
	}
	m2 := New(Options{})
	m2.SetRevision(aliases, nil)
	if err := m2.Ensure("a", state.DriverRefs{Required: []string{"net"}}); !errors.Is(err, ErrNoKernel) {
		t.Errorf("no kernel: %v, want ErrNoKernel", err)
	}
}

func TestBoardSection(t *testing.T) {
	k := newFakeKernel()
	m := New(Options{Kernel: k, Meta: meta})
	m.SetRevision(aliases, Sections("pv_bootloader.dtb=broadcom/bcm2711-rpi-4-b.dtb", ""))
	if err := m.Ensure("a", state.DriverRefs{Required: []string{"wifi"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := k.take(), "load cfg80211; load brcmfmac roamoff=1"; got != want {
		t.Errorf("dtb section: %s, want %s", got, want)
	}
}

// TestPending: while the modules are pending, a container's Ensure waits
// for them outside the lock (GET /drivers still answers), and the kmod
// Kernel does not read the directory's index: the initrd's is not the
// BSP's.
func TestPending(t *testing.T) {
	k := newFakeKernel()
	pending := make(chan struct{})
	m := New(Options{Kernel: k, Meta: meta, Pending: func() <-chan struct{} { return pending }})
	m.SetRevision(aliases, nil)
	refs := state.DriverRefs{Required: []string{"net"}}
	done := make(chan error, 1)
	go func() { done <- m.Ensure("app", refs) }()
	if st := m.Status(refs); len(st) != 1 || st[0].Status != Unloaded {
		t.Errorf("Status while pending = %v, want net UNLOADED", st)
	}
	select {
	case err := <-done:
		t.Fatalf("Ensure returned %v while the modules were pending", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(pending)
	if err := <-done; err != nil || !k.loaded["dummy"] {
		t.Errorf("Ensure after the mount = %v, loaded %v", err, k.loaded)
	}

	dir := t.TempDir()
	kp := make(chan struct{})
	kk := Kmod(dir, t.TempDir(), func() <-chan struct{} { return kp }, nil)
	if err := kk.Load("dummy", ""); !errors.Is(err, errPending) || kk.Loaded("dummy") {
		t.Errorf("Kmod Load while pending = %v, want errPending", err)
	}
	close(kp)
	if err := kk.Load("dummy", ""); err == nil || errors.Is(err, errPending) {
		t.Errorf("Kmod Load after the mount of an empty directory = %v, want the index error", err)
	}
}
