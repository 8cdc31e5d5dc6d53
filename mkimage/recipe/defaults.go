package recipe

// Defaults fills every unset field with its default. It is the only place
// defaults live; Parse calls it before Validate.
func Defaults(r *Recipe) {
	if r.InitMode == "" {
		r.InitMode = ModeEmbedded
	}
	if r.Debian.Suite == "" {
		r.Debian.Suite = "bookworm"
	}
	if r.Debian.Mirror == "" {
		r.Debian.Mirror = "http://deb.debian.org/debian"
	}
	if len(r.Debian.Components) == 0 {
		r.Debian.Components = []string{"main"}
	}
	if r.Debian.Keyring == "" {
		r.Debian.Keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
	}
	if r.Initrd.Programs == nil {
		for _, p := range Programs {
			if Applets[p] == "" {
				r.Initrd.Programs = append(r.Initrd.Programs, p)
			}
		}
	}
	if r.Initrd.Compression == "" {
		r.Initrd.Compression = "xz"
	}
	if r.Modules.Compression == "" {
		r.Modules.Compression = "xz"
	}
	if r.ContainerCompression == "" {
		r.ContainerCompression = "xz"
	}
	if r.InitMode == ModeAppengine {
		if r.Bootloader.Type == "" {
			r.Bootloader.Type = BootNone
		}
		return
	}
	if r.ImageSizeMiB == 0 {
		r.ImageSizeMiB = 1024
	}
	if r.Bootloader.Type == "" {
		r.Bootloader.Type = BootGrub
	}
	if r.Bootloader.Type == BootGrub && len(r.Bootloader.Firmware) == 0 {
		r.Bootloader.Firmware = []string{"uefi", "bios"}
	}
	if r.Disk.Table == "" {
		r.Disk.Table = "gpt"
	}
	if r.Disk.AlignKiB == 0 {
		r.Disk.AlignKiB = 1024
	}
	for i := range r.Disk.Partitions {
		p := &r.Disk.Partitions[i]
		if p.Name == "" {
			p.Name = p.Role
		}
		switch p.Role {
		case RoleStorage:
			if p.Label == "" {
				p.Label = "root"
			}
			if p.FS == "" {
				p.FS = "ext4"
			}
		case RoleESP, RoleBoot:
			if p.Label == "" {
				p.Label = "PVBOOT"
			}
			if p.FS == "" {
				p.FS = "fat32"
			}
		case RoleBIOSBoot, RoleRaw:
			if p.FS == "" {
				p.FS = "none"
			}
		}
	}
}
