package metadata

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestDeviceDefaults(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "device-tree"), 0o755)
	os.WriteFile(filepath.Join(proc, "device-tree", "model"), []byte("Raspberry Pi 4 Model B Rev 1.2\x00"), 0o644)
	os.WriteFile(filepath.Join(proc, "cpuinfo"), []byte("processor\t: 0\nBogoMIPS\t: 108.00\nHardware\t: BCM2835\nmodel name\t: ARMv8 Processor rev 3 (v8l)\n\nprocessor\t: 1\nmodel name\t: other\n"), 0o644)
	now := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("X", -2*3600))
	d := Device{
		Version: "019-abc", Revision: "locals/x", Mode: "local", Status: "DONE",
		Storage: &Usage{Total: 100, Free: 60, Reserved: 5, RealFree: 55},
		ProcDir: proc,
		Now:     func() time.Time { return now },
		Uname: func() (Uname, error) {
			return Uname{"Linux", "6.1.0", "#1 SMP", "(none)", "aarch64"}, nil
		},
		Sysinfo: func() (Sysinfo, error) { return Sysinfo{Uptime: 34, Procs: 86, MemUnit: 1}, nil },
		Interfaces: func() ([]Iface, error) {
			return []Iface{
				{Name: "lo", IPv4: []string{"127.0.0.1"}, IPv6: []string{"::1"}},
				{Name: "eth0", IPv4: []string{"192.168.1.2"}, IPv6: []string{"fe80::1%eth0"}, MAC: "02:00:0a:00:03:02"},
				{Name: "wlan0"},
			}, nil
		},
	}
	kvs, err := d.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var order []string
	for _, kv := range kvs {
		got[kv.Key] = string(kv.Value)
		order = append(order, kv.Key)
	}
	wantOrder := "pantavisor.arch pantavisor.version pantavisor.dtmodel pantavisor.cpumodel pantavisor.revision pantavisor.mode pantavisor.status pantavisor.uname time sysinfo interfaces storage"
	if strings.Join(order, " ") != wantOrder {
		t.Errorf("keys = %q, want %q", order, wantOrder)
	}
	for k, want := range map[string]string{
		"pantavisor.version":  "019-abc",
		"pantavisor.dtmodel":  "Raspberry Pi 4 Model B Rev 1.2",
		"pantavisor.cpumodel": "ARMv8 Processor rev 3 (v8l)",
		"pantavisor.revision": "locals/x",
		"pantavisor.mode":     "local",
		"pantavisor.status":   "DONE",
		"pantavisor.uname":    `{"kernel.name":"Linux","kernel.release":"6.1.0","kernel.version":"#1 SMP","node.name":"(none)","machine":"aarch64"}`,
		"time":                `{"timeval":{"tv_sec":1767330245,"tv_usec":6000},"timezone":{"tz_minuteswest":120,"tz_dsttime":0}}`,
		"sysinfo":             `{"uptime":34,"loads.0":0,"loads.1":0,"loads.2":0,"totalram":0,"freeram":0,"sharedram":0,"bufferram":0,"totalswap":0,"freeswap":0,"procs":86,"totalhigh":0,"freehigh":0,"mem_unit":1}`,
		"interfaces":          `{"lo.ipv4":["127.0.0.1"],"eth0.ipv4":["192.168.1.2"],"lo.ipv6":["::1"],"eth0.ipv6":["fe80::1%eth0"],"eth0.mac":["02:00:0a:00:03:02"]}`,
		"storage":             `{"total":100,"free":60,"reserved":5,"real_free":55}`,
	} {
		if got[k] != want {
			t.Errorf("%s = %s, want %s", k, got[k], want)
		}
	}
	if a := got["pantavisor.arch"]; !strings.HasPrefix(a, "aarch64/") || !(strings.HasSuffix(a, "/EL") || strings.HasSuffix(a, "/EB")) {
		t.Errorf("pantavisor.arch = %q, want aarch64/<bits>/<EL|EB>", a)
	}

	// Failing sources are left out, the rest is still returned.
	d.Uname = func() (Uname, error) { return Uname{}, errors.New("boom") }
	d.ProcDir = t.TempDir()
	d.Storage = nil
	kvs, err = d.Defaults()
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Defaults with failing uname: err = %v, want boom", err)
	}
	for _, kv := range kvs {
		switch kv.Key {
		case "pantavisor.arch", "pantavisor.uname", "pantavisor.dtmodel", "pantavisor.cpumodel", "storage":
			t.Errorf("%s published although its source is missing", kv.Key)
		}
	}
}

func TestRealSystem(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	kvs, err := Device{Mode: "local"}.Defaults()
	if err != nil {
		t.Fatalf("Defaults on this system: %v", err)
	}
	for _, kv := range kvs {
		switch kv.Key {
		case "pantavisor.uname", "time", "sysinfo", "interfaces":
			if !json.Valid(kv.Value) {
				t.Errorf("%s = %s: invalid JSON", kv.Key, kv.Value)
			}
		}
	}
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(kvs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	b, _ := json.Marshal(s)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET shape does not parse: %v\n%s", err, b)
	}
	if _, ok := m["sysinfo"].(map[string]any); !ok {
		t.Errorf("sysinfo not embedded as an object: %s", b)
	}
}

func TestCPUModelFallback(t *testing.T) {
	proc := t.TempDir()
	os.WriteFile(filepath.Join(proc, "cpuinfo"), []byte("system type\t\t: MT7621\ncpu model\t\t: MIPS 1004Kc V2.15\n"), 0o644)
	if got, want := CPUModel(proc), "MIPS 1004Kc V2.15"; got != want {
		t.Errorf("CPUModel = %q, want %q", got, want)
	}
	if got := CPUModel(t.TempDir()); got != "" {
		t.Errorf("CPUModel(no cpuinfo) = %q, want \"\"", got)
	}
}
