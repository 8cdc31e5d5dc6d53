package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// genState returns an indented, unsorted state JSON with n containers,
// each with a full run.json, config, root volume, config overlay file,
// src.json and a signature.
func genState(n int) []byte {
	var b strings.Builder
	b.WriteString("{\n  \"#spec\": \"pantavisor-service-system@1\",\n")
	b.WriteString(`  "bsp/run.json": {"linux": "kernel.img", "initrd": "pantavisor", "fdt": "b.dtb", "modules": "modules.squashfs", "firmware": "firmware.squashfs", "addons": ["a.cpio.xz4"]},` + "\n")
	for _, f := range []string{"kernel.img", "pantavisor", "b.dtb", "modules.squashfs", "firmware.squashfs", "a.cpio.xz4"} {
		fmt.Fprintf(&b, "  \"bsp/%s\": \"%s\",\n", f, sha3)
	}
	b.WriteString(`  "device.json": {"groups": [{"name": "data", "status_goal": "MOUNTED", "restart_policy": "system", "timeout": 30}, {"name": "root", "restart_policy": "system", "timeout": 30}, {"name": "platform", "restart_policy": "system", "timeout": 30}, {"name": "app", "timeout": 30, "auto_recovery": {"policy": "on-failure", "max_retries": 5, "retry_delay": 5, "backoff_factor": 2.0, "stable_timeout": 30, "backoff_policy": "reboot"}}], "disks": [{"name": "zram", "type": "volume-disk", "provision": "zram", "mount_target": "/z"}]},` + "\n")
	hdr := b64(`{"alg":"RS256","typ":"PVS","pvs":{"include":["c/**"],"exclude":["c/src.json"]}}`)
	for i := range n {
		c := fmt.Sprintf("container-%03d", i)
		fmt.Fprintf(&b, `  "%s/run.json": {
    "#spec": "service-manifest-run@1", "type": "lxc", "name": "%s",
    "config": "lxc.container.conf", "root-volume": "root.squashfs", "volumes": ["dm:data.squashfs"],
    "group": "app", "status_goal": "STARTED", "restart_policy": "container", "roles": ["nobody"],
    "auto_recovery": {"policy": "always", "max_retries": 3, "retry_delay": 2.5, "backoff_factor": 1.5, "reset_window": 600, "stable_timeout": 20, "backoff_policy": "10min"},
    "storage": {"docker--etc": {"persistence": "permanent"}, "lxc-overlay": {"persistence": "boot"}, "docker--var": {"persistence": "revision", "disk": "zram"}},
    "logs": [{"file": "/var/log/messages", "maxsize": 102400, "truncate": true}],
    "drivers": {"required": ["wifi"], "optional": ["bt"]},
    "services": {"required": [{"name": "bus", "type": "dbus", "interface": "org.x", "target": "/run/bus"}]},
    "network": {"mode": "host", "hostname": "h%d"}, "dev-log": false, "exec": "/sbin/init"
  },
`, c, c, i)
		for _, f := range []string{"lxc.container.conf", "root.squashfs", "data.squashfs"} {
			fmt.Fprintf(&b, "  \"%s/%s\": \"%064x\",\n", c, f, i+1)
		}
		fmt.Fprintf(&b, "  \"%s/src.json\": {\"#spec\": \"service-manifest-src@1\", \"docker_digest\": \"sha256:%064x\", \"args\": {\"PV_RESTART\": \"1\", \"size\": 1.25}},\n", c, i)
		fmt.Fprintf(&b, "  \"_config/%s/etc/app/config.toml\": \"%064x\",\n", c, i+7)
		fmt.Fprintf(&b, "  \"_sigs/%s.json\": {\"#spec\": \"pvs@2\", \"protected\": \"%s\", \"signature\": \"c2lnbmF0dXJl\"},\n", c, hdr)
	}
	b.WriteString("  \"README.md\": \"" + sha3 + "\"\n}\n")
	return []byte(b.String())
}

func TestGenState(t *testing.T) {
	s := mustParse(t, string(genState(10)))
	if got := len(s.Platforms()); got != 10 {
		t.Errorf("len(Platforms()) = %d, want 10", got)
	}
	if got := len(s.Signatures()); got != 10 {
		t.Errorf("len(Signatures()) = %d, want 10", got)
	}
}

// BenchmarkParse200 parses, validates and re-serializes a 200-container
// state.
func BenchmarkParse200(b *testing.B) {
	data := genState(200)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.serialize()) == 0 {
			b.Fatal("empty canonical output")
		}
	}
}

// BenchmarkCanonical200 canonicalizes the same state without validation.
func BenchmarkCanonical200(b *testing.B) {
	data := genState(200)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibUnmarshal200 is a reference point: encoding/json decoding
// the same state into map[string]any, without any validation.
func BenchmarkStdlibUnmarshal200(b *testing.B) {
	data := genState(200)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}
