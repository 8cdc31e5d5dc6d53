package container

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/pvrtemplate"
	"github.com/pantavisor/pantavisor-go/runtime/state"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// fakeBin writes an executable stand-in for busybox/pvcontrol.
func fakeBin(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+name+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuild(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		testenv.Skipf(t, "mksquashfs not installed (Debian squashfs-tools)")
	}
	src := t.TempDir()
	bb, pvc, pvcurl := fakeBin(t, src, "busybox"), fakeBin(t, src, "pvcontrol"), fakeBin(t, src, "pvcurl")
	tests := []struct {
		name, template string
		wantRoles      bool
		wantGroup      string
		wantInit       string
	}{
		{"pv-mgmt", Mgmt, true, "platform", "trap 'echo \"pv-mgmt: stopping\""},
		{"pv-network", Network, false, "root", "trap stop PWR TERM INT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var shas [3]string
			cache := t.TempDir()
			for i := range shas {
				// 0: no cache; 1: fills the cache; 2: from the cache
				c := cache
				if i == 0 {
					c = ""
				}
				work := t.TempDir()
				e, err := Build(context.Background(), Spec{Name: tc.name, Template: tc.template, Busybox: bb, Pvcontrol: pvc,
					Pvcurl: pvcurl, Work: work, Epoch: 1700000000, Cache: c})
				if err != nil {
					t.Fatalf("Build(%s) = %v", tc.template, err)
				}
				// pv-ctrl's clients are in the mgmt container
				if _, err := os.Stat(filepath.Join(work, tc.name, "rootfs/usr/bin/pvcurl")); (err == nil) != (tc.template == Mgmt) {
					t.Errorf("Build(%s) /usr/bin/pvcurl: %v", tc.template, err)
				}
				// The halt signal is trapped (TestInitStops runs it).
				if init, err := os.ReadFile(filepath.Join(work, tc.name, "rootfs/sbin/pv-init")); err != nil || !strings.Contains(string(init), tc.wantInit) {
					t.Errorf("Build(%s) /sbin/pv-init = %q, %v; want %q in it", tc.template, init, err, tc.wantInit)
				}
				got := strings.Join(e.Keys(), " ")
				want := tc.name + "/lxc.container.conf " + tc.name + "/root.squashfs " + tc.name + "/run.json"
				if got != want {
					t.Fatalf("Build(%s) keys = %q, want %q", tc.template, got, want)
				}
				data, err := os.ReadFile(e.Objects[tc.name+"/root.squashfs"])
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(data)
				shas[i] = hex.EncodeToString(sum[:])
				conf, _ := os.ReadFile(e.Objects[tc.name+"/lxc.container.conf"])
				if !strings.Contains(string(conf), "lxc.rootfs.path = overlayfs:/volumes/"+tc.name+"/root.squashfs:") ||
					!strings.Contains(string(conf), "lxc.init.cmd = /sbin/pv-init") {
					t.Errorf("lxc.container.conf = %s", conf)
				}
				var run struct {
					Type, Group, Config string
					Roles               []string
					Root                string `json:"root-volume"`
				}
				if err := json.Unmarshal(e.Inline[tc.name+"/run.json"], &run); err != nil {
					t.Fatal(err)
				}
				if run.Type != "lxc" || run.Group != tc.wantGroup || run.Config != "lxc.container.conf" || run.Root != "root.squashfs" || (len(run.Roles) == 1) != tc.wantRoles {
					t.Errorf("run.json = %s", e.Inline[tc.name+"/run.json"])
				}
			}
			if shas[0] != shas[1] || shas[1] != shas[2] {
				t.Errorf("root.squashfs sha = %v, want reproducible (and the same from the cache)", shas)
			}
			if m, _ := filepath.Glob(filepath.Join(cache, "squashfs-*")); len(m) != 1 {
				t.Errorf("cache holds %v, want one squashfs", m)
			}
		})
	}
	if _, err := Build(context.Background(), Spec{Name: "x", Template: "web", Busybox: bb, Work: t.TempDir()}); !errors.Is(err, ErrTemplate) {
		t.Errorf("Build(template web) = %v, want ErrTemplate", err)
	}
}

// Every default container binds the device's /etc/resolv.conf, which
// pv-network fills from its lease: none keeps an empty one of its own.
func TestDefaultSrcResolvConf(t *testing.T) {
	for _, tmpl := range []string{Mgmt, Network, SDK} {
		src, err := DefaultSrc("c", tmpl, "/sbin/pv-init")
		if err != nil {
			t.Fatal(err)
		}
		f, err := pvrtemplate.Render("c", src, pvrtemplate.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(f.LXCConf), "\nlxc.mount.entry = /etc/resolv.conf etc/resolv.conf none bind,rw,create=file 0 0\n") {
			t.Errorf("%s lxc.container.conf does not bind the device's resolv.conf:\n%s", tmpl, f.LXCConf)
		}
	}
}

// device writes a small reference device: one platform with an object.
func device(t *testing.T) (raw []byte, objs map[string][]byte) {
	t.Helper()
	objs = map[string][]byte{}
	put := func(b []byte) string {
		s := sha256.Sum256(b)
		h := hex.EncodeToString(s[:])
		objs[h] = b
		return h
	}
	conf := put([]byte("lxc.init.cmd = /sbin/init\n"))
	kern := put([]byte("kernel"))
	raw = []byte(`{"#spec":"pantavisor-service-system@1","app/lxc.container.conf":"` + conf + `","app/run.json":{"name":"app","type":"lxc","config":"lxc.container.conf"},"bsp/kernel.img":"` + kern + `","bsp/run.json":{"linux":"kernel.img"}}`)
	return raw, objs
}

func TestLoadSource(t *testing.T) {
	raw, objs := device(t)
	// pvr checkout with objects in .pvr/objects
	co := t.TempDir()
	os.MkdirAll(filepath.Join(co, ".pvr", "objects"), 0o755)
	os.WriteFile(filepath.Join(co, ".pvr", "json"), raw, 0o644)
	for sha, b := range objs {
		os.WriteFile(filepath.Join(co, ".pvr", "objects", sha), b, 0o644)
	}
	// pvr checkout with .pvr/config ObjectsDir relative to the checkout
	co2 := t.TempDir()
	os.MkdirAll(filepath.Join(co2, ".pvr"), 0o755)
	os.MkdirAll(filepath.Join(co2, "store"), 0o755)
	os.WriteFile(filepath.Join(co2, ".pvr", "json"), raw, 0o644)
	os.WriteFile(filepath.Join(co2, ".pvr", "config"), []byte(`{"ObjectsDir":"store"}`), 0o644)
	for sha, b := range objs {
		os.WriteFile(filepath.Join(co2, "store", sha), b, 0o644)
	}
	// export tarball
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	add("json", raw)
	for sha, b := range objs {
		add("objects/"+sha, b)
	}
	tw.Close()
	zw.Close()
	tgz := filepath.Join(t.TempDir(), "dev.tgz")
	os.WriteFile(tgz, buf.Bytes(), 0o644)
	// corrupt checkout
	bad := t.TempDir()
	os.MkdirAll(filepath.Join(bad, "objects"), 0o755)
	os.WriteFile(filepath.Join(bad, "json"), raw, 0o644)
	for sha := range objs {
		os.WriteFile(filepath.Join(bad, "objects", sha), []byte("tampered"), 0o644)
	}
	tests := []struct {
		name, src string
		wantErr   string
	}{
		{"checkout dir", co, ""},
		{"checkout .pvr", filepath.Join(co, ".pvr"), ""},
		{"ObjectsDir", filepath.Join(co2, ".pvr"), ""},
		{"export tgz", tgz, ""},
		{"clone url", "https://pvr.pantahub.com/u/dev", "offline"},
		{"tampered object", bad, "content has sha256"},
		{"missing", filepath.Join(co, "nope"), "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := LoadSource(tc.src, t.TempDir())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadSource(%s) = %v, want error with %q", tc.src, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadSource(%s) = %v", tc.src, err)
			}
			if got, want := strings.Join(e.Keys(), " "), "app/lxc.container.conf app/run.json"; got != want {
				t.Fatalf("LoadSource(%s) keys = %q, want %q (bsp/ dropped)", tc.src, got, want)
			}
			b, err := os.ReadFile(e.Objects["app/lxc.container.conf"])
			if err != nil || !bytes.Equal(b, []byte("lxc.init.cmd = /sbin/init\n")) {
				t.Errorf("object app/lxc.container.conf = %q, %v", b, err)
			}
		})
	}
}

func FuzzLoadSourceTarball(f *testing.F) {
	raw, _ := device(&testing.T{})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "json", Mode: 0o644, Size: int64(len(raw)), Typeflag: tar.TypeReg})
	tw.Write(raw)
	tw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "x.tar")
		os.WriteFile(p, data, 0o644)
		e, err := LoadSource(p, filepath.Join(dir, "w"))
		if err != nil {
			return
		}
		for k := range e.Inline {
			if err := state.ValidKey(k); err != nil {
				t.Errorf("key %q: %v", k, err)
			}
		}
	})
}

func TestMergeDuplicate(t *testing.T) {
	a := NewEntries()
	a.Inline["x/run.json"] = json.RawMessage(`{}`)
	b := NewEntries()
	b.Objects["x/run.json"] = "/dev/null"
	if err := a.Merge(b); err == nil {
		t.Errorf("Merge(duplicate key) = nil, want error")
	}
}

// TestNetworkSntp stages the network template with the host's root as
// the target root of toybox (Debian's toybox and libc6 installed): toybox
// and exactly the libraries it links land in the container root, so its
// sntp runs there (chroot, --help only: nothing is set); without NTPRoot
// the container has no time sync.
func TestNetworkSntp(t *testing.T) {
	testenv.NeedRoot(t, "runs sntp in a chroot")
	if _, err := os.Stat("/bin/toybox"); err != nil {
		testenv.Skipf(t, "no /bin/toybox (Debian toybox)")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	s := Spec{Name: "pv-network", Template: Network, Busybox: "/bin/busybox", NTPRoot: "/"}
	if _, err := s.rootfs(root); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("chroot", root, "/usr/bin/sntp", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: sntp") {
		t.Fatalf("sntp --help in the container root: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "sbin/pv-ntp")); err != nil {
		t.Error(err)
	}
	plain := filepath.Join(t.TempDir(), "rootfs")
	s.NTPRoot = ""
	if _, err := s.rootfs(plain); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sbin/pv-ntp", "usr/bin/sntp"} {
		if _, err := os.Lstat(filepath.Join(plain, p)); err == nil {
			t.Errorf("%s without NTPRoot", p)
		}
	}
}

// TestWifiConf runs pv-network's pv-wifi with busybox on a fake kernel
// command line, user metadata and /sys/class/net: the configuration it
// renders, the interface it picks, and no Wi-Fi without an SSID or with
// another pvnet_type.
func TestWifiConf(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Skipf(t, "no busybox (Debian busybox-static)")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "pv-wifi")
	must(t, os.WriteFile(script, []byte(wifiScript), 0o755))
	sysnet := filepath.Join(dir, "net")
	for _, d := range []string{"lo", "eth0", "wlan0/wireless", "wlan1/wireless"} {
		must(t, os.MkdirAll(filepath.Join(sysnet, d), 0o755))
	}
	run := func(cmdline string, meta map[string]string, arg string) (string, error) {
		t.Helper()
		d := t.TempDir()
		must(t, os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmdline+"\n"), 0o644))
		md := filepath.Join(d, "meta")
		must(t, os.Mkdir(md, 0o755))
		for k, v := range meta {
			must(t, os.WriteFile(filepath.Join(md, k), []byte(v), 0o644))
		}
		cmd := exec.Command(bb, "sh", script, arg)
		cmd.Env = []string{"PATH=" + filepath.Dir(bb), "PV_CMDLINE=" + filepath.Join(d, "cmdline"),
			"PV_USERMETA=" + md, "PV_SYSNET=" + sysnet}
		out, err := cmd.Output()
		return string(out), err
	}
	// Debian's wpa_supplicant reads each configuration (in a network
	// namespace of its own, on its wired driver and lo) when it and root
	// are there.
	_, err = exec.LookPath("wpa_supplicant")
	wpa := err == nil && os.Geteuid() == 0
	if !wpa {
		if testenv.InCI() {
			t.Fatal("wpa_supplicant (Debian wpasupplicant) and root read the configurations in CI")
		}
		t.Log("no wpa_supplicant or not root: configurations not read by wpa_supplicant")
	}
	const boot = "console=ttyS0 pvnet_type=wifi pvnet_ssid=home pvnet_pass=secret12 quiet"
	for _, tc := range []struct {
		name, cmdline string
		meta          map[string]string
		want          string // "" = not configured
		parsed        string // what wpa_supplicant -dd says it read
	}{
		{"psk from the cmdline", boot, nil, "network={\n\tssid=\"home\"\n\tscan_ssid=1\n\tpsk=\"secret12\"\n}\n", `ssid='home'`},
		{"quoted, open", `pvnet_ssid="cafe" pvnet_security=none`, nil, "network={\n\tssid=\"cafe\"\n\tscan_ssid=1\n\tkey_mgmt=NONE\n}\n", `ssid='cafe'`},
		{"user metadata overrides", boot, map[string]string{"pvnet_ssid": "My \"Net\" 5G\n", "pvnet_pass": "p a*ss1234"},
			"network={\n\tssid=\"My \"Net\" 5G\"\n\tscan_ssid=1\n\tpsk=\"p a*ss1234\"\n}\n", `ssid='My \"Net\" 5G'`},
		{"raw psk", "pvnet_ssid=x pvnet_pass=" + strings.Repeat("0a", 32), nil,
			"network={\n\tssid=\"x\"\n\tscan_ssid=1\n\tpsk=" + strings.Repeat("0a", 32) + "\n}\n", `ssid='x'`},
		{"wep", "pvnet_ssid=old pvnet_pass=12345 pvnet_security=wep", nil,
			"network={\n\tssid=\"old\"\n\tscan_ssid=1\n\tkey_mgmt=NONE\n\twep_key0=\"12345\"\n\twep_tx_keyidx=0\n}\n", `ssid='old'`},
		{"ethernet", "pvnet_type=ethernet pvnet_ssid=home", nil, "", ""},
		{"no ssid", "pvnet_type=wifi pvnet_pass=x", nil, "", ""},
		{"8021x refused", "pvnet_ssid=corp pvnet_security=ieee8021x", nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(tc.cmdline, tc.meta, "conf")
			if tc.want == "" {
				if err == nil {
					t.Errorf("pv-wifi conf = %q, want a failure (no Wi-Fi)", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("pv-wifi conf = %q, %v; want %q", got, err, tc.want)
			}
			if wpa {
				checkWpaConf(t, got, tc.parsed)
			}
		})
	}
	if got, err := run(boot, nil, "iface"); err != nil || got != "wlan0\n" {
		t.Errorf("pv-wifi iface = %q, %v; want wlan0", got, err)
	}
	if got, err := run("pvnet_type=ethernet", nil, "iface"); err == nil {
		t.Errorf("pv-wifi iface without Wi-Fi = %q, want a failure", got)
	}
}

// checkWpaConf has wpa_supplicant read conf (debug output, for two
// seconds) and wants its network block with the SSID it logs as parsed.
func checkWpaConf(t *testing.T, conf, parsed string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "wpa.conf")
	must(t, os.WriteFile(f, []byte(conf), 0o600))
	out, _ := exec.Command("timeout", "2", "unshare", "-n", "wpa_supplicant", "-dd", "-D", "wired", "-i", "lo", "-c", f).CombinedOutput()
	if strings.Contains(string(out), "Failed to read or parse configuration") || !strings.Contains(string(out), "id=0 "+parsed) {
		t.Errorf("wpa_supplicant read %q:\n%s\nwant id=0 %s", conf, out, parsed)
	}
}

// TestNetworkWifi stages the network template with the host's root as
// the target root of wpa_supplicant (Debian's wpasupplicant installed):
// it and the libraries it links run in the container root.
func TestNetworkWifi(t *testing.T) {
	testenv.NeedRoot(t, "runs wpa_supplicant in a chroot")
	if _, err := os.Stat(wpaSupplicant); err != nil {
		testenv.Skipf(t, "no %s (Debian wpasupplicant)", wpaSupplicant)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	s := Spec{Name: "pv-network", Template: Network, Busybox: "/bin/busybox", WifiRoot: "/"}
	if _, err := s.rootfs(root); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("chroot", root, "/sbin/wpa_supplicant", "-v").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "wpa_supplicant v2") {
		t.Fatalf("wpa_supplicant -v in the container root: %v: %s", err, out)
	}
	plain := filepath.Join(t.TempDir(), "rootfs")
	s.WifiRoot = ""
	if _, err := s.rootfs(plain); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(plain, "sbin/wpa_supplicant")); err == nil {
		t.Error("sbin/wpa_supplicant without WifiRoot")
	}
}
