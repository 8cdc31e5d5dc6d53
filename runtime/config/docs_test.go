package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/config-keys.md from the key table")

// keyNotes are remarks docs/config-keys.md shows beside a key.
var keyNotes = map[string]string{
	"PV_VOLMOUNT_DM_EXTRA_ARGS":     "not supported: extra veritysetup options for `dm:` (dm-verity) volumes; the verity table is built in Go (runtime/volume) with none, and free-form options there could switch verification off (`ignore_corruption`)",
	"PV_SECUREBOOT_HANDLERS":        "not supported: `dm:<file>` (dm-verity) volumes are mounted by the Go runtime itself, without handler scripts to verify; other `<handler>:` volumes are refused with an error",
	"PV_SYSTEM_APPARMOR_PROFILES":   "not supported: the seeds name the profiles to load but not where their files live nor in which form (source or compiled), and the runtime has no AppArmor loader",
	"PV_STORAGE_PHCONFIG_VOL":       "not supported: pantahub.config is read in INIT, before the revision's disks (and so the `pv--phconfig` volume) are up; the volume is reported as ignored",
	"PV_STORAGE_FIRMWARE_VOL":       "not supported: the seeds never describe a `pv--firmware` volume (upstream writes its path to `/sys/module/firmware_class/parameters/path`: what it holds and where it mounts without a disk is undocumented)",
	"PV_STORAGE_MNTTYPE":            "not supported: the seeds give only `ext4` and \"set storage mount type\" beside PV_STORAGE_FSTYPE (which mounts storage), with no text telling what is mounted with it",
	"PV_DISK_WRITABLEDIR":           "not supported: the seeds say only \"set writable directory\" (default `/writable`); nothing in the documented layout or manifests uses a writable directory, so there is nothing to put there",
	"PV_CONTROL_REMOTE":             "decides local or remote mode: 0 keeps the Hub client off and refuses GO_REMOTE",
	"PV_DEBUG_SSH":                  "the Go ssh server (runtime/sshd) on :8222; ENABLE_SSH/DISABLE_SSH set it until reboot; upstream's `prod` policy sets 0",
	"PV_DEBUG_SSH_AUTHORIZED_KEYS":  "unset or `__default__`: user meta `pvr-sdk.authorized_keys`; a name: `<PV_SYSTEM_ETCPANTAVISORDIR>/ssh/<name>`; an absolute path: that file",
	"PV_DROPBEAR_CACHE_DIR":         "keeps the ssh host key `ssh_host_ed25519_key` (OpenSSH format, made on first start)",
	"PV_DISABLE_AUTODEV":            "upstream a pvr build argument of one container; here also device-wide",
	"PV_DISK_EXPORTSDIR":            "exporters' root file systems show in `<dir>/<container>`; App Engine default: `<run dir>/exports`",
	"PV_LOG_BUF_NITEMS":             "records per log output queue, when set; unset, the log server's 1024 (upstream's 128 overflows on a burst of container output)",
	"PV_LOG_CAPTURE_DMESG":          "`/dev/kmsg` as `pantavisor/dmesg` in embedded and standalone modes (App Engine leaves the host's kernel log alone); the stdout outputs leave out the records the kernel printed on the console itself (below its console_loglevel)",
	"PV_LOG_STDOUT":                 "adds the `stdout` output (every record, on the console of an image) to PV_LOG_SERVER_OUTPUTS, in place of `stdout.pantavisor`/`stdout.containers`",
	"PV_LOOP_INDEX_BASE":            "volumes and disks take the free loop devices from `/dev/loop<N>` up (made when missing; containers:16); -1: the kernel's lowest free one",
	"PV_LOG_MAXSIZE":                "maxsize of a file logger whose run.json `logs[]` entry has none (and of the default syslog/messages loggers)",
	"PV_REMOUNT_POLICY":             "not supported: the seeds say a policy is a list of remount directives (mount-command path with wildcards, and options), defined globally or per container, but not which file or manifest key holds the policies",
	"PV_SECUREBOOT_CHECKSUM":        "objects re-hashed at boot: those the containers' start uses (containers, firmware) in RUN before the revision runs; what bsp/run.json names for the boot loader (linux, initrd, addons, fdt, fit, rpiab) and the modules images beside the container start at idle priority, the modules mounted once theirs passed; a mismatch either way fails the revision (ROLLBACK; an update under test is not committed before the late part ends); not `bsp/fit-image.its` nor the data file of `<handler>:` volumes (dm-verity checks each block as it is read; their hash device is verified); `pv_quickboot` in the environment or on the command line skips it",
	"PV_SYSTEM_MOUNT_SECURITYFS":    "securityfs on `/sys/kernel/security` in INIT when Pantavisor is PID 1 (App Engine leaves the host's alone)",
	"PV_SYSTEM_USRDIR":              "set: containers at lxcpath `<dir>/var/lib/lxc` with `lxc.rootfs.mount` `<dir>/lib/lxc/rootfs`, as upstream; unset: lxcpath `<run dir>/lxc` and liblxc's rootfs mount (an image's /usr may be read-only)",
	"PV_SYSTEM_INIT_MODE":           "standalone: storage, control socket, debug shell and ssh; no container, no update, no Hub",
	"PV_STORAGE_LOGTEMPSIZE":        "the log dir (PV_LOG_DIR) on a tmpfs of that size (bytes or % of RAM), unmounted at exit (logs:7): logs spare the flash and go at reboot; one table of the seeds spells it `PV_STORAGE_LOGTEMP_SIZE`",
	"PV_LXC_EXTRA_CONF":             "upstream a pvr build argument of one container; here also device-wide, lines separated by `;`",
	"PV_NET_BRDEV":                  "the bridge (with PV_NET_BRADDRESS4/PV_NET_BRMASK4) is made when Pantavisor is PID 1, not in App Engine; device.json `network.pools` make their own bridges",
	"PH_CREDS_PROXY_HOST":           "HTTPS to the Hub through the proxy's CONNECT tunnel (with PH_CREDS_PROXY_PORT); `PH_CREDS_PROXY_NOPROXYCONNECT=1` goes direct; environment proxies are never used",
	"PV_SYSTEM_MEDIADIR":            "crypt disks mount on `<dir>/pv/dmcrypt/<name>`; App Engine default: `<run dir>/media`",
	"PV_SYSCTL_KERNEL_CORE_PATTERN": "stands for every `PV_SYSCTL_*` / `sysctl.*` key, written in INIT by the device's init (PID 1; App Engine applies none); `/lib/pv/pvcrash` keeps the core as `/storage/corepv`, `--skip` drains it",
}

// areaText describes the areas of keys that are not implemented yet.
var areaText = map[area]string{
	bootloader: "boot loader settings: u-boot A/B partition and environment names, FIT configuration",
	disks:      "extra options of the device-mapper volume handler",
	drivers:    "managed drivers and early module loading",
	hub:        "the Pantacor Hub client: credentials, claim, remote updates and metadata, log push",
	logs:       "container loggers and log capture",
	network:    "the container network bridge",
	secureboot: "verification of handler scripts (there are none: dm-verity volumes are built in)",
	storage:    "storage layout options (writable dir, mount type, firmware and Hub-credentials volumes)",
	system:     "remount policies, AppArmor profiles",
	watchdog:   "the hardware watchdog",
}

// levelsText renders a mask in the legend's short form.
func levelsText(m Mask) string {
	var parts []string
	switch {
	case m&pvLevels == pvLevels:
		parts, m = append(parts, "pv"), m&^pvLevels
	case m&phLevels == phLevels:
		parts, m = append(parts, "ph"), m&^phLevels
	default:
		m &^= base
	}
	if m&oem != 0 {
		parts, m = append(parts, "oem"), m&^oem
	}
	if m&run == run {
		parts, m = append(parts, "run"), m&^run
	}
	for _, l := range m.Levels() {
		parts = append(parts, l.String())
	}
	return strings.Join(parts, ", ")
}

// configKeysDoc renders docs/config-keys.md from the table.
func configKeysDoc(idents map[string]string) []byte {
	goName := map[string]string{}
	for id, name := range idents {
		goName[name] = id
	}
	var b bytes.Buffer
	keys := Keys()
	todo := map[string]int{}
	done := 0
	for _, k := range keys {
		if k.Implemented() {
			done++
		} else {
			todo[k.Todo()]++
		}
	}
	areas := make([]string, 0, len(todo))
	for a := range todo {
		areas = append(areas, a)
	}
	sort.Strings(areas)
	b.WriteString(`# Configuration keys

<!-- Generated from runtime/config/keys.go by
     go test ./runtime/config -run TestConfigKeysDoc -update
     Do not edit by hand. -->

Every key Pantavisor reads from ` + "`pantavisor.config`" + `, ` + "`pantahub.config`" + `, the policy
and OEM files, the kernel command line (` + "`pv_…`/`ph_…`" + `), the ` + "`PV_*`/`PH_*`" + ` environment,
user metadata and commands. Code names a key by its Go identifier in ` + "`runtime/config`" + `
(` + "`c.Get(config.DiskVolDir)`" + `), so a misspelt key does not compile; files, the command line
and ` + "`GET /config`, `/config2`" + ` keep the upstream names.

**Status.** *implemented*: this build acts on the key. *not yet (area)*: the key is
accepted, shown by ` + "`GET /config2`" + ` and kept, but nothing acts on it yet; setting it to
a value other than its default logs once at startup
` + "`config: PV_X is not implemented in this build; ignored`" + `. The area names the later
work expected to implement it. ` + "`TestKeysReferenced`" + ` keeps the status true: an
implemented key is read by the code, and a key the code reads is marked implemented.

**Levels** (where a key may be set, besides the built-in default and the program's
arguments): *pv* = ` + "`pantavisor.config`" + `, policy, ` + "`pv_`" + ` command line, environment;
*ph* = ` + "`pantahub.config`" + `, policy, ` + "`ph_`" + ` command line, environment; *oem* = the
revision's OEM file; *run* = user metadata and commands (at run time).

`)
	fmt.Fprintf(&b, "%d keys: %d implemented, %d not yet (", len(keys), done, len(keys)-done)
	for i, a := range areas {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", a, todo[a])
	}
	b.WriteString(").\n\nAreas of the keys not implemented yet:\n\n")
	for _, a := range areas {
		fmt.Fprintf(&b, "- *%s*: %s\n", a, areaText[area(a)])
	}
	b.WriteString(`
The seeds' tables also list build options, which ` + "`build.docker.sh`" + ` reads and Pantavisor
does not: ` + "`PV_BUILD_*`, `PV_MERGE_SBOM`, `PV_PVS_CERT_PEM`, `PV_PVS_PUB_PEM`, `PV_FACTORY_AUTOTOK`" + `
(README.md), and ` + "`PH_CIBOT_*`, `PH_TARGET_DEVICE`" + ` (upstream's CI, not supported).
`)
	b.WriteString("\n| key | Go name | legacy name | type | default | levels | status | note |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, k := range keys {
		d := k.d
		alias := ""
		if len(d.Aliases) > 0 {
			alias = "`" + strings.Join(d.Aliases, "`, `") + "`"
		}
		def := ""
		if d.Default != "" {
			def = "`" + strings.ReplaceAll(d.Default, "|", `\|`) + "`"
		}
		typ := d.Type.String()
		if d.Type == Enum {
			typ = strings.Join(d.Enum, " \\| ")
		}
		if d.Secret {
			typ += " (secret)"
		}
		status := "implemented"
		if !k.Implemented() {
			status = "not yet (" + k.Todo() + ")"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s | %s | %s | %s |\n",
			d.Name, goName[d.Name], alias, typ, def, levelsText(d.Levels), status, keyNotes[d.Name])
	}
	return b.Bytes()
}

// TestConfigKeysDoc: docs/config-keys.md is the table rendered; run with
// -update after changing the table.
func TestConfigKeysDoc(t *testing.T) {
	for _, k := range Keys() {
		if !k.Implemented() && areaText[k.d.Todo] == "" {
			t.Errorf("%s: area %q has no description in areaText", k.Name(), k.Todo())
		}
	}
	for name := range keyNotes {
		if _, ok := Lookup(name); !ok {
			t.Errorf("keyNotes names %s, which is not a key", name)
		}
	}
	path := filepath.Join("..", "..", "docs", "config-keys.md")
	want := configKeysDoc(keyIdents(t))
	if *updateDocs {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with the key table: run go test ./runtime/config -run TestConfigKeysDoc -update", path)
	}
}
