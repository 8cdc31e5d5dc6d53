package recipe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
)

const minimal = `
arch = "amd64"
[kernel]
package = "linux-image-amd64"
[[disk.partitions]]
role = "bios-boot"
size_mib = 1
[[disk.partitions]]
role = "esp"
size_mib = 64
[[disk.partitions]]
role = "storage"
`

func TestParseDefaults(t *testing.T) {
	r, err := Parse([]byte(minimal), "pc")
	if err != nil {
		t.Fatalf("Parse(minimal) = %v, want nil", err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"Name", r.Name, "pc"},
		{"InitMode", r.InitMode, ModeEmbedded},
		{"Bootloader.Type", r.Bootloader.Type, BootGrub},
		{"Bootloader.Firmware", strings.Join(r.Bootloader.Firmware, ","), "uefi,bios"},
		{"Disk.Table", r.Disk.Table, "gpt"},
		{"storage label", r.StoragePartition().Label, "root"},
		{"storage fs", r.StoragePartition().FS, "ext4"},
		{"esp label", r.Partition(RoleESP).Label, "PVBOOT"},
		{"esp fs", r.Partition(RoleESP).FS, "fat32"},
		{"Debian.Suite", r.Debian.Suite, "bookworm"},
		{"Initrd.Compression", r.Initrd.Compression, "xz"},
	} {
		if c.got != c.want {
			t.Errorf("Parse(minimal).%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if r.ImageSizeMiB != 1024 {
		t.Errorf("Parse(minimal).ImageSizeMiB = %d, want 1024", r.ImageSizeMiB)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name, recipe, wantKey string
	}{
		{"unknown top key", "foo = 1\n" + minimal, "unknown key foo"},
		{"unknown nested key", strings.Replace(minimal, "[kernel]", "[kernel]\nimage = \"x\"", 1), "unknown key kernel.image"},
		{"bad arch", strings.Replace(minimal, `"amd64"`, `"x86"`, 1), "arch:"},
		{"bad mode", "init_mode = \"daemon\"\n" + minimal, ""},
		{"no kernel", strings.Replace(minimal, `package = "linux-image-amd64"`, "", 1), "kernel.package"},
		{"storage not last", minimal + "[[disk.partitions]]\nrole = \"raw\"\nsize_mib = 1\n", "must be the last"},
		{"bios on mbr", strings.Replace(minimal, "arch = \"amd64\"", "arch = \"amd64\"\n[disk]\ntable = \"mbr\"", 1), "bios-boot partitions exist only on gpt"},
		{"fat label", strings.Replace(minimal, `role = "esp"`, "role = \"esp\"\nlabel = \"pvboot\"", 1), "FAT label"},
		{"fat32 too small", strings.Replace(minimal, "size_mib = 64", "size_mib = 16", 1), "fat32 needs"},
		{"image too small", "image_size_mib = 32\n" + minimal, "image_size_mib: 32 MiB"},
		{"bad module", minimal + "[initrd]\nmodules = [\"../x\"]\n", "initrd.modules[0]"},
		{"bad include", minimal + "[modules]\ninclude = [\"/abs\"]\n", "modules.include[0]"},
		{"bad glob", minimal + "[modules]\nexclude = [\"kernel/[x\"]\n", "modules.exclude[0]"},
		{"escaping config", minimal + "[config]\npantavisor = \"../etc/passwd\"\n", "config.pantavisor"},
		{"dup addon", "addons = [\"debug\", \"debug\"]\n" + minimal, "addons[1]"},
		{"container without source", minimal + "[[containers]]\nname = \"a\"\n", "containers[0]"},
		{"container source and template", minimal + "[[containers]]\nname = \"a\"\nsource = \"x.tgz\"\ntemplate = \"mgmt\"\n", "containers[0]"},
		{"container bad template", minimal + "[[containers]]\nname = \"a\"\ntemplate = \"web\"\n", "containers[0].template"},
		{"container image and template", minimal + "[[containers]]\nname = \"a\"\nimage = \"oci:x\"\ntemplate = \"mgmt\"\n", "containers[0]"},
		{"container bad image", minimal + "[[containers]]\nname = \"a\"\nimage = \"nginx\"\n", "containers[0].image"},
		{"container args without image", minimal + "[[containers]]\nname = \"a\"\ntemplate = \"mgmt\"\nargs = { PV_GROUP = \"app\" }\n", "containers[0].args"},
		{"container bad arg", minimal + "[[containers]]\nname = \"a\"\nimage = \"oci:x\"\nargs = { \"pv group\" = \"app\" }\n", "containers[0].args"},
		{"wifi on a mgmt container", minimal + "[[containers]]\nname = \"a\"\ntemplate = \"mgmt\"\nwifi = true\n", "containers[0].wifi"},
		{"verity on a source", minimal + "[[containers]]\nname = \"a\"\nsource = \"x.tgz\"\nverity = true\n", "containers[0].verity"},
		{"verity not a bool", minimal + "[[containers]]\nname = \"a\"\ntemplate = \"mgmt\"\nverity = \"yes\"\n", ""},
		{"container_verity not a bool", "container_verity = 1\n" + minimal, ""},
		{"container twice", minimal + "[[containers]]\nname = \"a\"\ntemplate = \"mgmt\"\n[[containers]]\nname = \"a\"\ntemplate = \"network\"\n", "containers[1].name"},
		{"bad container compression", "container_compression = \"lzma\"\n" + minimal, `container_compression: "lzma" is not xz, gzip, lz4 or zstd`},
		{"bad modules compression", minimal + "[modules]\ncompression = \"lzo\"\n", `modules.compression: "lzo"`},
		{"bad initrd compression", minimal + "[initrd]\ncompression = \"lz4\"\n", `initrd.compression: "lz4" is not one of [xz zstd gzip none]`},
		{"bad program", minimal + "[initrd]\nprograms = [\"bash\"]\n", "initrd.programs[0]"},
		{"no pantavisor", minimal + "[initrd]\nprograms = [\"pventer\"]\n", "initrd.programs"},
		{"applet listed", minimal + "[initrd]\nprograms = [\"pantavisor\", \"pventer\"]\n", "initrd.programs[1]: \"pventer\" is an applet of pantavisor"},
		{"bad bootloader", minimal + "[bootloader]\ntype = \"lilo\"\n", "bootloader.type"},
		{"zero size", strings.Replace(minimal, "size_mib = 64", "size_mib = 0", 1), "size_mib"},
		{"appengine with disk", strings.Replace(minimal, "arch = \"amd64\"", "arch = \"amd64\"\ninit_mode = \"appengine\"", 1), "appengine targets"},
		{"bad toml", "arch = ", ""},
		{"wrong type", "arch = 3\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.recipe), "t")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse() = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("Parse() = %q, want it to mention %q", err, tt.wantKey)
			}
		})
	}
}

// TestImageContainer: an image container with its args parses.
func TestImageContainer(t *testing.T) {
	r, err := Parse([]byte(minimal+"[[containers]]\nname = \"web\"\nimage = \"oci:../images/web:v1\"\nargs = { PV_GROUP = \"app\", PV_ROLES = [\"mgmt\"] }\n"+
		"[[containers]]\nname = \"reg\"\nimage = \"docker://nginx:latest\"\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	c := r.Containers[0]
	if c.Image != "oci:../images/web:v1" || c.Args["PV_GROUP"] != "app" || len(c.Args["PV_ROLES"].([]any)) != 1 {
		t.Errorf("containers[0] = %+v", c)
	}
}

// TestVerity: container_verity is the default of the template and image
// containers, their verity key wins, sources are never converted; the
// initrd gets dm_verity once, and only when a container is dm-verity.
func TestVerity(t *testing.T) {
	const cs = "[[containers]]\nname = \"a\"\ntemplate = \"mgmt\"\n" +
		"[[containers]]\nname = \"b\"\nimage = \"oci:x\"\nverity = false\n" +
		"[[containers]]\nname = \"c\"\nsource = \"x.tgz\"\n" +
		"[[containers]]\nname = \"d\"\ntemplate = \"network\"\nverity = true\n"
	for _, tc := range []struct {
		name, recipe string
		want         string // verity of a b c d
		mods         string
	}{
		{"off", minimal + "[initrd]\nmodules = [\"loop\"]\n" + strings.Replace(cs, "verity = true\n", "", 1), "----", "loop"},
		{"one", minimal + "[initrd]\nmodules = [\"loop\"]\n" + cs, "---v", "loop dm_verity"},
		{"default", "container_verity = true\n" + minimal + "[initrd]\nmodules = [\"loop\"]\n" + cs, "v--v", "loop dm_verity"},
		{"listed", minimal + "[initrd]\nmodules = [\"dm_verity\", \"loop\"]\n" + cs, "---v", "dm_verity loop"},
	} {
		r, err := Parse([]byte(tc.recipe), "t")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := ""
		for _, c := range r.Containers {
			if r.Verity(c) {
				got += "v"
			} else {
				got += "-"
			}
		}
		if got != tc.want {
			t.Errorf("%s: verity = %s, want %s", tc.name, got, tc.want)
		}
		if mods := strings.Join(r.InitrdModules(), " "); mods != tc.mods {
			t.Errorf("%s: InitrdModules() = %q, want %q", tc.name, mods, tc.mods)
		}
		if strings.Join(r.Initrd.Modules, " ") != strings.TrimSuffix(tc.mods, " dm_verity") {
			t.Errorf("%s: initrd.modules changed to %v", tc.name, r.Initrd.Modules)
		}
	}
}

func TestUboot(t *testing.T) {
	const arm = `
arch = "arm64"
[kernel]
package = "linux-image-arm64"
[bootloader]
type = "uboot"
[disk]
table = "mbr"
align_kib = 4096
[[disk.partitions]]
role = "boot"
size_mib = 64
[[disk.partitions]]
role = "storage"
`
	r, err := Parse([]byte(arm), "arm64-qemu")
	if err != nil {
		t.Fatalf("Parse(arm64 uboot) = %v, want nil", err)
	}
	if got := r.Partition(RoleBoot).Label; got != "PVBOOT" {
		t.Errorf("boot label = %q, want PVBOOT", got)
	}
	if len(r.Bootloader.Firmware) != 0 {
		t.Errorf("uboot firmware = %v, want none", r.Bootloader.Firmware)
	}
}

// TestTargets parses every recipe shipped in targets/.
func TestTargets(t *testing.T) {
	files, err := filepath.Glob("../../targets/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("Glob(targets) = %v, %v, want recipes", files, err)
	}
	for _, f := range files {
		r, err := Load(f)
		if err != nil {
			t.Errorf("Load(%s) = %v", f, err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".toml"); r.Name != want {
			t.Errorf("Load(%s).Name = %q, want %q", f, r.Name, want)
		}
		// The console the boot test reads is the serial console of the
		// architecture's QEMU machine (mkimage/arch); rpiab images name
		// the Pi's serial0 and their boot test passes the QEMU machine's
		// UART itself.
		if a, err := arch.Lookup(r.Arch); r.InitMode == ModeEmbedded && r.Bootloader.Type != BootRpiAB && (err != nil || !strings.Contains(r.Kernel.Cmdline, "console="+a.Console)) {
			t.Errorf("%s: kernel.cmdline %q does not name console=%s of %s (%v)", f, r.Kernel.Cmdline, a.Console, r.Arch, err)
		}
	}
}

func TestAddons(t *testing.T) {
	files, _ := filepath.Glob("../../addons/*.toml")
	for _, f := range files {
		if _, err := LoadAddon(f); err != nil {
			t.Errorf("LoadAddon(%s) = %v", f, err)
		}
	}
	for _, tt := range []struct{ name, in string }{
		{"empty", ""},
		{"relative", "[[files]]\nfrom = \"bin/x\"\n"},
		{"escape", "[[files]]\nfrom = \"/bin/../x\"\n"},
		{"mode", "[[files]]\nfrom = \"/bin/x\"\nmode = 99999\n"},
		{"unknown", "[[files]]\nfrom = \"/bin/x\"\nowner = 1\n"},
	} {
		if _, err := ParseAddon([]byte(tt.in), "a"); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseAddon(%s) = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}

func FuzzRecipe(f *testing.F) {
	f.Add([]byte(minimal))
	if data, err := os.ReadFile("../../targets/x64-uefi.toml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("arch = \"amd64\"\ninit_mode = \"appengine\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse() = %v, want ErrInvalid or nil", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("Validate() after successful Parse = %v", err)
		}
		if r.InitMode == ModeEmbedded && r.StoragePartition() == nil {
			t.Fatalf("embedded recipe without storage accepted")
		}
	})
}

func TestInitrdCompression(t *testing.T) {
	for _, c := range []string{"xz", "zstd", "gzip", "none"} {
		r, err := Parse([]byte(minimal+"[initrd]\ncompression = \""+c+"\"\n"), "pc")
		if err != nil || r.Initrd.Compression != c {
			t.Errorf("Parse(compression = %q) = %v, %v", c, r, err)
		}
	}
}
