package config

import (
	"sort"
	"strings"
)

// Type is the value type of a key; it decides how values are parsed and
// how GET /config renders them.
type Type int

// The value types.
const (
	String   Type = iota
	Bool          // 1/0/true/false/yes/no/on/off
	Int           // decimal integer, may be negative
	Enum          // one of Key.Enum
	Duration      // N, Ns, Nmin, Nh, Nd; stored as seconds
	Size          // N[B|K|KB|M|MB|G|GB|T|TB] or N%
)

var typeNames = [...]string{String: "string", Bool: "bool", Int: "int", Enum: "enum", Duration: "duration", Size: "size"}

// String names the type.
func (t Type) String() string {
	if t < 0 || int(t) >= len(typeNames) {
		return "unknown"
	}
	return typeNames[t]
}

// Key names one configuration key. The package declares one exported Key
// per table row (DiskVolDir for PV_DISK_VOLDIR, LogLevel for PV_LOG_LEVEL…)
// and no other package can make one, so a misspelt key does not compile
// (issue 11: Get("PV_…") with an unknown name silently returned "").
// Names from outside the program (files, command line, environment,
// user metadata) are resolved through Lookup and Set. The zero Key names
// no key: Get returns "" for it.
type Key struct{ d *keyDef }

// Name returns the canonical upper-case name, e.g. PV_LOG_LEVEL.
func (k Key) Name() string {
	if k.d == nil {
		return ""
	}
	return k.d.Name
}

// String returns Name.
func (k Key) String() string { return k.Name() }

// Implemented reports whether this build acts on the key. Setting a key
// that is not implemented to a value other than its default logs one
// warning (see Set).
func (k Key) Implemented() bool { return k.d != nil && k.d.Todo == "" }

// Todo names the area expected to implement the key ("hub", "network",
// "watchdog"…), or "" when it is implemented.
func (k Key) Todo() string {
	if k.d == nil {
		return ""
	}
	return string(k.d.Todo)
}

// keyDef describes one configuration key.
type keyDef struct {
	Name    string   // canonical upper-case name, e.g. PV_LOG_LEVEL
	Aliases []string // legacy dotted names (case-sensitive); Aliases[0] is the one GET /config shows
	Type    Type
	Default string   // default value in its canonical form
	Enum    []string // allowed values of an Enum, in upstream order (GET /config shows the index)
	Levels  Mask     // levels at which the key may be set
	Secret  bool     // masked in GET /config and /config2
	// Todo is empty for a key this build acts on; otherwise it names the
	// area expected to implement it, and setting the key logs a warning.
	// TestKeysReferenced keeps it true: an implemented key is read by some
	// code, and a key read by code is marked implemented.
	Todo area
}

// area is a part of Pantavisor that a later issue is expected to
// implement; docs/config-keys.md describes each (areaText) and lists the
// keys that wait for it.
type area string

// The areas of keys that are not implemented yet.
const (
	bootloader area = "bootloader"
	disks      area = "disks"
	drivers    area = "drivers"
	hub        area = "hub"
	logs       area = "logs"
	network    area = "network"
	secureboot area = "secureboot"
	storage    area = "storage"
	system     area = "system"
	watchdog   area = "watchdog"
)

// Level masks shared by the table rows.
const (
	base = Mask(1<<Default | 1<<Args)
	// pvLevels: pantavisor.config, policy, pv_ cmdline and env.
	pvLevels = base | Mask(1<<PVConf|1<<Policy|1<<PVCmdline|1<<Env)
	// phLevels: pantahub.config, policy, ph_ cmdline and env.
	phLevels = base | Mask(1<<PHConf|1<<Policy|1<<PHCmdline|1<<Env)
	oem      = Mask(1 << OEM)
	// run: keys user metadata and commands may override.
	run = Mask(1<<Metadata | 1<<Command)
)

func al(a ...string) []string { return a }

// keyTable lists every key, in declaration order; def fills it.
var keyTable []*keyDef

// def adds a key to the table.
func def(d keyDef) Key {
	keyTable = append(keyTable, &d)
	return Key{&d}
}

// The keys: one declarative list (docs reference "Pantavisor
// Configuration", the legacy pantavisor.config and pantahub.config tables,
// and spec §8). Where the docs and the upstream code disagree on a
// default, the code (spec §8) wins.
var (
	// Pantacor Hub client (pantahub.config).
	HubCredsHost                = def(keyDef{Name: "PH_CREDS_HOST", Aliases: al("creds.host"), Type: String, Default: "api.pantahub.com", Levels: phLevels | oem})
	HubCredsID                  = def(keyDef{Name: "PH_CREDS_ID", Aliases: al("creds.id"), Type: String, Levels: phLevels | oem})
	HubCredsPort                = def(keyDef{Name: "PH_CREDS_PORT", Aliases: al("creds.port"), Type: Int, Default: "443", Levels: phLevels | oem})
	HubCredsProxyHost           = def(keyDef{Name: "PH_CREDS_PROXY_HOST", Aliases: al("creds.proxy.host"), Type: String, Levels: phLevels | oem})
	HubCredsProxyNoProxyConnect = def(keyDef{Name: "PH_CREDS_PROXY_NOPROXYCONNECT", Aliases: al("creds.proxy.noproxyconnect"), Type: Int, Default: "0", Levels: phLevels | oem})
	HubCredsProxyPort           = def(keyDef{Name: "PH_CREDS_PROXY_PORT", Aliases: al("creds.proxy.port"), Type: Int, Default: "3218", Levels: phLevels | oem})
	HubCredsPRN                 = def(keyDef{Name: "PH_CREDS_PRN", Aliases: al("creds.prn"), Type: String, Levels: phLevels | oem, Secret: true})
	HubCredsSecret              = def(keyDef{Name: "PH_CREDS_SECRET", Aliases: al("creds.secret"), Type: String, Levels: phLevels | oem, Secret: true})
	HubCredsTPMCert             = def(keyDef{Name: "PH_CREDS_TPM_CERT", Aliases: al("creds.tpm.cert"), Type: String, Levels: phLevels | oem, Todo: hub})
	HubCredsTPMKey              = def(keyDef{Name: "PH_CREDS_TPM_KEY", Aliases: al("creds.tpm.key"), Type: String, Levels: phLevels | oem, Secret: true, Todo: hub})
	HubCredsType                = def(keyDef{Name: "PH_CREDS_TYPE", Aliases: al("creds.type"), Type: String, Default: "builtin", Levels: phLevels | oem})
	HubFactoryAutoTok           = def(keyDef{Name: "PH_FACTORY_AUTOTOK", Aliases: al("factory.autotok"), Type: String, Levels: phLevels | oem, Secret: true})
	HubLibeventHTTPRetries      = def(keyDef{Name: "PH_LIBEVENT_HTTP_RETRIES", Type: Int, Default: "1", Levels: phLevels | oem})
	HubLibeventHTTPTimeout      = def(keyDef{Name: "PH_LIBEVENT_HTTP_TIMEOUT", Type: Duration, Default: "60", Levels: phLevels | oem})
	HubMetadataDevMetaInterval  = def(keyDef{Name: "PH_METADATA_DEVMETA_INTERVAL", Aliases: al("metadata.devmeta.interval"), Type: Duration, Default: "10", Levels: phLevels | oem | run})
	HubMetadataUsrMetaInterval  = def(keyDef{Name: "PH_METADATA_USRMETA_INTERVAL", Aliases: al("metadata.usrmeta.interval"), Type: Duration, Default: "5", Levels: phLevels | oem | run})
	HubOnlineRequestThreshold   = def(keyDef{Name: "PH_ONLINE_REQUEST_THRESHOLD", Type: Int, Default: "0", Levels: phLevels | oem})
	HubUpdaterInterval          = def(keyDef{Name: "PH_UPDATER_INTERVAL", Aliases: al("updater.interval"), Type: Duration, Default: "60", Levels: phLevels | oem | run})
	HubUpdaterNetworkTimeout    = def(keyDef{Name: "PH_UPDATER_NETWORK_TIMEOUT", Aliases: al("updater.network_timeout"), Type: Duration, Default: "120", Levels: phLevels | oem})
	HubUpdaterTransferMaxCount  = def(keyDef{Name: "PH_UPDATER_TRANSFER_MAX_COUNT", Type: Int, Default: "5", Levels: phLevels | oem})
)

var (
	// Bootloader.
	BootloaderFITConfig         = def(keyDef{Name: "PV_BOOTLOADER_FITCONFIG", Type: String, Levels: pvLevels})
	BootloaderMTDEnv            = def(keyDef{Name: "PV_BOOTLOADER_MTD_ENV", Aliases: al("bootloader.mtd_env"), Type: String, Default: "pv-env", Levels: pvLevels})
	BootloaderMTDOnly           = def(keyDef{Name: "PV_BOOTLOADER_MTD_ONLY", Aliases: al("bootloader.mtd_only"), Type: Bool, Default: "0", Levels: pvLevels})
	BootloaderType              = def(keyDef{Name: "PV_BOOTLOADER_TYPE", Aliases: al("bootloader.type"), Type: Enum, Default: "uboot", Enum: []string{"uboot", "uboot-pvk", "uboot-ab", "grub", "rpiab"}, Levels: pvLevels})
	BootloaderUBootABAName      = def(keyDef{Name: "PV_BOOTLOADER_UBOOTAB_A_NAME", Type: String, Default: "fitA", Levels: pvLevels})
	BootloaderUBootABBName      = def(keyDef{Name: "PV_BOOTLOADER_UBOOTAB_B_NAME", Type: String, Default: "fitB", Levels: pvLevels})
	BootloaderUBootABEnvBakName = def(keyDef{Name: "PV_BOOTLOADER_UBOOTAB_ENV_BAK_NAME", Type: String, Levels: pvLevels})
	BootloaderUBootABEnvName    = def(keyDef{Name: "PV_BOOTLOADER_UBOOTAB_ENV_NAME", Type: String, Levels: pvLevels})
	BootloaderUBootABEnvOffset  = def(keyDef{Name: "PV_BOOTLOADER_UBOOTAB_ENV_OFFSET", Type: Int, Default: "0", Levels: pvLevels})
	BootloaderUBootABEnvSize    = def(keyDef{Name: "PV_BOOTLOADER_UBOOTAB_ENV_SIZE", Type: Int, Default: "0", Levels: pvLevels})
)

var (
	// Metadata caches.
	CacheDevMetaDir = def(keyDef{Name: "PV_CACHE_DEVMETADIR", Aliases: al("cache.devmetadir"), Type: String, Default: "/storage/cache/devmeta", Levels: pvLevels})
	CacheUsrMetaDir = def(keyDef{Name: "PV_CACHE_USRMETADIR", Aliases: al("meta.cache.dir", "cache.usrmetadir"), Type: String, Default: "/storage/cache/meta", Levels: pvLevels})
)

var (
	// Remote control.
	ControlRemote       = def(keyDef{Name: "PV_CONTROL_REMOTE", Aliases: al("control.remote"), Type: Bool, Default: "1", Levels: pvLevels | oem})
	ControlRemoteAlways = def(keyDef{Name: "PV_CONTROL_REMOTE_ALWAYS", Aliases: al("control.remote.always"), Type: Bool, Default: "0", Levels: pvLevels | oem})
)

var (
	// Debug access.
	DebugShell             = def(keyDef{Name: "PV_DEBUG_SHELL", Aliases: al("debug.shell"), Type: Bool, Default: "1", Levels: pvLevels})
	DebugShellAutologin    = def(keyDef{Name: "PV_DEBUG_SHELL_AUTOLOGIN", Aliases: al("debug.shell.autologin"), Type: Bool, Default: "0", Levels: pvLevels})
	DebugShellTimeout      = def(keyDef{Name: "PV_DEBUG_SHELL_TIMEOUT", Type: Duration, Default: "60", Levels: pvLevels})
	DebugSSH               = def(keyDef{Name: "PV_DEBUG_SSH", Aliases: al("debug.ssh"), Type: Bool, Default: "1", Levels: pvLevels | oem | run})
	DebugSSHAuthorizedKeys = def(keyDef{Name: "PV_DEBUG_SSH_AUTHORIZED_KEYS", Aliases: al("debug.ssh_authorized_keys"), Type: String, Levels: pvLevels | oem})
)

var (
	// Directories.
	DiskExportsDir   = def(keyDef{Name: "PV_DISK_EXPORTSDIR", Type: String, Default: "/exports", Levels: pvLevels})
	DiskVolDir       = def(keyDef{Name: "PV_DISK_VOLDIR", Aliases: al("disk.voldir"), Type: String, Default: "/volumes", Levels: pvLevels})
	DiskWritableDir  = def(keyDef{Name: "PV_DISK_WRITABLEDIR", Type: String, Default: "/writable", Levels: pvLevels, Todo: storage})
	DropbearCacheDir = def(keyDef{Name: "PV_DROPBEAR_CACHE_DIR", Aliases: al("dropbear.cache.dir"), Type: String, Default: "/storage/cache/dropbear", Levels: pvLevels})
)

var (
	// HTTP and event loop.
	LibeventDebugMode = def(keyDef{Name: "PV_LIBEVENT_DEBUG_MODE", Type: Bool, Default: "0", Levels: pvLevels | oem})
	LibThHTTPCertsDir = def(keyDef{Name: "PV_LIBTHHTTP_CERTSDIR", Aliases: al("libhttp.certsdir"), Type: String, Default: "/certs", Levels: pvLevels})
	LibThHTTPLogLevel = def(keyDef{Name: "PV_LIBTHHTTP_LOG_LEVEL", Aliases: al("libhttp.log.level"), Type: Int, Default: "3", Levels: pvLevels | oem | run})
)

var (
	// Logs.
	LogAutoDevLog                = def(keyDef{Name: "PV_LOG_AUTO_DEVLOG", Type: Bool, Default: "1", Levels: pvLevels | oem})
	LogBufNItems                 = def(keyDef{Name: "PV_LOG_BUF_NITEMS", Aliases: al("log.buf_nitems"), Type: Int, Default: "128", Levels: pvLevels | oem})
	LogCapture                   = def(keyDef{Name: "PV_LOG_CAPTURE", Aliases: al("log.capture"), Type: Bool, Default: "1", Levels: pvLevels | oem})
	LogCaptureDmesg              = def(keyDef{Name: "PV_LOG_CAPTURE_DMESG", Aliases: al("log.capture.dmesg"), Type: Bool, Default: "1", Levels: pvLevels | oem})
	LogDir                       = def(keyDef{Name: "PV_LOG_DIR", Aliases: al("log.dir"), Type: String, Default: "/storage/logs/", Levels: pvLevels})
	LogDirMaxSize                = def(keyDef{Name: "PV_LOG_DIR_MAXSIZE", Type: Size, Default: "0", Levels: pvLevels | oem})
	LogFiletreeTimestampFormat   = def(keyDef{Name: "PV_LOG_FILETREE_TIMESTAMP_FORMAT", Aliases: al("log.filetree.timestamp.format"), Type: String, Levels: pvLevels | oem})
	LogHysteresisFactor          = def(keyDef{Name: "PV_LOG_HYSTERESIS_FACTOR", Type: Int, Default: "4", Levels: pvLevels | oem})
	LogLevel                     = def(keyDef{Name: "PV_LOG_LEVEL", Aliases: al("log.level"), Type: Int, Default: "0", Levels: pvLevels | oem | run})
	LogLoggers                   = def(keyDef{Name: "PV_LOG_LOGGERS", Aliases: al("log.loggers"), Type: Bool, Default: "1", Levels: pvLevels | oem})
	LogMaxSize                   = def(keyDef{Name: "PV_LOG_MAXSIZE", Aliases: al("log.maxsize"), Type: Size, Default: "2097152", Levels: pvLevels | oem})
	LogPush                      = def(keyDef{Name: "PV_LOG_PUSH", Aliases: al("pantahub.log.push", "log.push"), Type: Bool, Default: "1", Levels: pvLevels | oem | run})
	LogRotateFactor              = def(keyDef{Name: "PV_LOG_ROTATE_FACTOR", Type: Int, Default: "5", Levels: pvLevels | oem})
	LogServerOutputs             = def(keyDef{Name: "PV_LOG_SERVER_OUTPUTS", Aliases: al("log.server.outputs"), Type: String, Default: "filetree", Levels: pvLevels | oem})
	LogSinglefileTimestampFormat = def(keyDef{Name: "PV_LOG_SINGLEFILE_TIMESTAMP_FORMAT", Aliases: al("log.singlefile.timestamp.format"), Type: String, Levels: pvLevels | oem})
	LogStdout                    = def(keyDef{Name: "PV_LOG_STDOUT", Aliases: al("log.stdout"), Type: Bool, Default: "0", Levels: pvLevels | oem})
	LogStdoutTimestampFormat     = def(keyDef{Name: "PV_LOG_STDOUT_TIMESTAMP_FORMAT", Aliases: al("log.stdout.timestamp.format"), Type: String, Levels: pvLevels | oem})
	LogTimestamp                 = def(keyDef{Name: "PV_LOG_TIMESTAMP", Type: Enum, Default: "relative", Enum: []string{"relative", "absolute"}, Levels: pvLevels | oem})
	LoopIndexBase                = def(keyDef{Name: "PV_LOOP_INDEX_BASE", Type: Int, Default: "-1", Levels: pvLevels})
	LXCLogLevel                  = def(keyDef{Name: "PV_LXC_LOG_LEVEL", Aliases: al("lxc.log.level"), Type: Int, Default: "2", Levels: pvLevels | oem})
)

var (
	// Containers. Upstream these are pvr build arguments of one container
	// (src.json args, baked into its lxc.container.conf); here they are
	// also device-wide settings of every container's LXC configuration,
	// not settable by user metadata or the revision's OEM file.
	DisableAutodev = def(keyDef{Name: "PV_DISABLE_AUTODEV", Type: Bool, Default: "0", Levels: pvLevels})
	// LXCExtraConf holds "lxc.key = value" lines separated by ';'.
	LXCExtraConf = def(keyDef{Name: "PV_LXC_EXTRA_CONF", Type: String, Levels: pvLevels})

	// Container network bridge.
	NetBrAddress4 = def(keyDef{Name: "PV_NET_BRADDRESS4", Aliases: al("net.braddress4"), Type: String, Default: "10.0.3.1", Levels: pvLevels | oem})
	NetBrDev      = def(keyDef{Name: "PV_NET_BRDEV", Aliases: al("net.brdev"), Type: String, Default: "lxcbr0", Levels: pvLevels | oem})
	NetBrMask4    = def(keyDef{Name: "PV_NET_BRMASK4", Aliases: al("net.brmask4"), Type: String, Default: "255.255.255.0", Levels: pvLevels | oem})
)

var (
	// OEM and policy selection.
	OEMName                = def(keyDef{Name: "PV_OEM_NAME", Type: String, Levels: pvLevels})
	PolicyName             = def(keyDef{Name: "PV_POLICY", Aliases: al("policy"), Type: String, Levels: base | Mask(1<<PVConf|1<<PVCmdline|1<<Env)})
	PowerMode              = def(keyDef{Name: "PV_POWER_MODE", Type: Enum, Default: "locks", Enum: []string{"disabled", "locks", "managed"}, Levels: pvLevels})
	RemountPolicy          = def(keyDef{Name: "PV_REMOUNT_POLICY", Type: String, Levels: base | Mask(1<<PVCmdline|1<<Env), Todo: system})
	RevisionRetries        = def(keyDef{Name: "PV_REVISION_RETRIES", Aliases: al("revision.retries"), Type: Int, Default: "10", Levels: pvLevels | oem})
	RevisionRetriesTimeout = def(keyDef{Name: "PV_REVISION_RETRIES_TIMEOUT", Aliases: al("revision.retries.timeout"), Type: Duration, Default: "120", Levels: pvLevels | oem})
)

var (
	// Secure boot.
	SecurebootChecksum      = def(keyDef{Name: "PV_SECUREBOOT_CHECKSUM", Aliases: al("secureboot.checksum"), Type: Bool, Default: "1", Levels: pvLevels})
	SecurebootHandlers      = def(keyDef{Name: "PV_SECUREBOOT_HANDLERS", Aliases: al("secureboot.handlers"), Type: Bool, Default: "1", Levels: pvLevels, Todo: secureboot})
	SecurebootMode          = def(keyDef{Name: "PV_SECUREBOOT_MODE", Aliases: al("secureboot.mode"), Type: Enum, Default: "lenient", Enum: []string{"disabled", "audit", "lenient", "strict"}, Levels: pvLevels})
	SecurebootOEMTruststore = def(keyDef{Name: "PV_SECUREBOOT_OEM_TRUSTSTORE", Type: String, Default: "ca-oem-certificates", Levels: pvLevels})
	SecurebootTruststore    = def(keyDef{Name: "PV_SECUREBOOT_TRUSTSTORE", Aliases: al("secureboot.truststore"), Type: String, Default: "ca-certificates", Levels: pvLevels})
)

var (
	// Storage.
	StorageDevice               = def(keyDef{Name: "PV_STORAGE_DEVICE", Aliases: al("storage.device"), Type: String, Levels: pvLevels})
	StorageFirmwareVol          = def(keyDef{Name: "PV_STORAGE_FIRMWARE_VOL", Type: Bool, Default: "0", Levels: pvLevels, Todo: storage})
	StorageFSType               = def(keyDef{Name: "PV_STORAGE_FSTYPE", Aliases: al("storage.fstype"), Type: String, Levels: pvLevels})
	StorageGCKeepFactory        = def(keyDef{Name: "PV_STORAGE_GC_KEEP_FACTORY", Aliases: al("updater.keep_factory", "storage.gc.keep_factory"), Type: Bool, Default: "0", Levels: pvLevels | oem | run})
	StorageGCReserved           = def(keyDef{Name: "PV_STORAGE_GC_RESERVED", Aliases: al("storage.gc.reserved"), Type: Int, Default: "5", Levels: pvLevels | oem | run})
	StorageGCThreshold          = def(keyDef{Name: "PV_STORAGE_GC_THRESHOLD", Aliases: al("storage.gc.threshold"), Type: Int, Default: "0", Levels: pvLevels | oem | run})
	StorageGCThresholdDeferTime = def(keyDef{Name: "PV_STORAGE_GC_THRESHOLD_DEFERTIME", Aliases: al("storage.gc.threshold.defertime"), Type: Duration, Default: "600", Levels: pvLevels | oem | run})
	StorageLogTempSize          = def(keyDef{Name: "PV_STORAGE_LOGTEMPSIZE", Aliases: al("storage.logtempsize"), Type: Size, Levels: pvLevels})
	StorageMntPoint             = def(keyDef{Name: "PV_STORAGE_MNTPOINT", Aliases: al("storage.mntpoint"), Type: String, Levels: pvLevels})
	StorageMntType              = def(keyDef{Name: "PV_STORAGE_MNTTYPE", Aliases: al("storage.mnttype"), Type: String, Levels: pvLevels, Todo: storage})
	StorageOpts                 = def(keyDef{Name: "PV_STORAGE_OPTS", Aliases: al("storage.opts"), Type: String, Levels: pvLevels})
	StoragePHConfigVol          = def(keyDef{Name: "PV_STORAGE_PHCONFIG_VOL", Type: Bool, Default: "0", Levels: pvLevels, Todo: storage})
	StorageWait                 = def(keyDef{Name: "PV_STORAGE_WAIT", Aliases: al("storage.wait"), Type: Duration, Default: "5", Levels: pvLevels})
)

var (
	// sysctl with a shipped default; any other PV_SYSCTL_* is accepted dynamically.
	SysctlKernelCorePattern = def(keyDef{Name: "PV_SYSCTL_KERNEL_CORE_PATTERN", Aliases: al("sysctl.kernel.core_pattern"), Type: String, Default: "|/lib/pv/pvcrash --skip", Levels: pvLevels | oem})
)

var (
	// System layout and init.
	SystemAppArmorProfiles     = def(keyDef{Name: "PV_SYSTEM_APPARMOR_PROFILES", Aliases: al("system.apparmor.profiles"), Type: String, Levels: pvLevels, Todo: system})
	SystemConfDir              = def(keyDef{Name: "PV_SYSTEM_CONFDIR", Aliases: al("system.confdir"), Type: String, Default: "/configs", Levels: pvLevels})
	SystemDriversLoadEarlyAuto = def(keyDef{Name: "PV_SYSTEM_DRIVERS_LOAD_EARLY_AUTO", Aliases: al("system.drivers.load_early.auto"), Type: Bool, Default: "0", Levels: pvLevels})
	SystemEtcDir               = def(keyDef{Name: "PV_SYSTEM_ETCDIR", Aliases: al("system.etcdir"), Type: String, Default: "/etc", Levels: pvLevels})
	SystemEtcPantavisorDir     = def(keyDef{Name: "PV_SYSTEM_ETCPANTAVISORDIR", Type: String, Default: "/etc/pantavisor", Levels: pvLevels})
	SystemInitMode             = def(keyDef{Name: "PV_SYSTEM_INIT_MODE", Aliases: al("system.init.mode"), Type: Enum, Default: "embedded", Enum: []string{"embedded", "standalone", "appengine"}, Levels: pvLevels})
	SystemLibDir               = def(keyDef{Name: "PV_SYSTEM_LIBDIR", Aliases: al("system.libdir"), Type: String, Default: "/lib", Levels: pvLevels})
	SystemMediaDir             = def(keyDef{Name: "PV_SYSTEM_MEDIADIR", Aliases: al("system.mediadir"), Type: String, Default: "/media", Levels: pvLevels})
	SystemMountSecurityFS      = def(keyDef{Name: "PV_SYSTEM_MOUNT_SECURITYFS", Aliases: al("system.mount.securityfs"), Type: Bool, Default: "0", Levels: pvLevels})
	SystemRunDir               = def(keyDef{Name: "PV_SYSTEM_RUNDIR", Aliases: al("system.rundir"), Type: String, Default: "/pv", Levels: pvLevels})
	SystemUsrDir               = def(keyDef{Name: "PV_SYSTEM_USRDIR", Type: String, Default: "/usr", Levels: pvLevels})
)

var (
	// Updates.
	// The docs' pantahub.config example sets updater.commit_delay, so the
	// key is also taken from that file.
	UpdaterCommitDelay   = def(keyDef{Name: "PV_UPDATER_COMMIT_DELAY", Aliases: al("updater.commit.delay", "updater.commit_delay"), Type: Duration, Default: "25", Levels: pvLevels | oem | Mask(1<<PHConf)})
	UpdaterGoalsTimeout  = def(keyDef{Name: "PV_UPDATER_GOALS_TIMEOUT", Aliases: al("updater.goals.timeout"), Type: Duration, Default: "120", Levels: pvLevels | oem})
	UpdaterUseTmpObjects = def(keyDef{Name: "PV_UPDATER_USE_TMP_OBJECTS", Aliases: al("updater.use_tmp_objects"), Type: Bool, Default: "0", Levels: pvLevels | oem, Todo: hub})
	VolmountDMExtraArgs  = def(keyDef{Name: "PV_VOLMOUNT_DM_EXTRA_ARGS", Type: String, Levels: pvLevels | oem, Todo: disks})
)

var (
	// Watchdog.
	WDTEnabled = def(keyDef{Name: "PV_WDT_ENABLED", Aliases: al("wdt.enabled"), Type: Bool, Default: "1", Levels: pvLevels})
	WDTMode    = def(keyDef{Name: "PV_WDT_MODE", Aliases: al("wdt.mode"), Type: Enum, Default: "shutdown", Enum: []string{"disabled", "shutdown", "startup", "always"}, Levels: pvLevels})
	WDTTimeout = def(keyDef{Name: "PV_WDT_TIMEOUT", Aliases: al("wdt.timeout"), Type: Duration, Default: "15", Levels: pvLevels})
)

// sysctlKey is the template of the dynamic PV_SYSCTL_* keys (applied in
// INIT by the device's init, runtime/pantavisor system.go).
var sysctlKey = keyDef{Type: String, Levels: pvLevels | oem}

const (
	sysctlPrefix      = "PV_SYSCTL_"
	sysctlAliasPrefix = "sysctl."
)

var (
	byName  = map[string]*keyDef{}
	byAlias = map[string]*keyDef{}
)

func init() {
	for _, k := range keyTable {
		byName[k.Name] = k
		for _, a := range k.Aliases {
			byAlias[a] = k
		}
	}
}

// Keys returns every key of the table, sorted by name.
func Keys() []Key {
	out := make([]Key, len(keyTable))
	for i, d := range keyTable {
		out[i] = Key{d}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].d.Name < out[j].d.Name })
	return out
}

// Lookup resolves a canonical name (case-insensitive) or a legacy alias
// (case-sensitive) to its key. Dynamic PV_SYSCTL_* / sysctl.* keys are not
// in the table and are not returned.
func Lookup(name string) (Key, bool) {
	if d, ok := byAlias[name]; ok {
		return Key{d}, true
	}
	d, ok := byName[strings.ToUpper(name)]
	return Key{d}, ok
}

// IsKey reports whether name is a configuration key: a table key, a legacy
// alias or a PV_SYSCTL_* / sysctl.* key.
func IsKey(name string) bool {
	_, _, ok := resolve(name)
	return ok
}

// resolve maps name to its key and canonical name. For sysctl keys it also
// returns the dotted path hint ("kernel/core_pattern") when the legacy form
// was used.
func resolve(name string) (k *keyDef, path string, ok bool) {
	if k, ok := byAlias[name]; ok {
		if strings.HasPrefix(name, sysctlAliasPrefix) {
			path = strings.ReplaceAll(name[len(sysctlAliasPrefix):], ".", "/")
		}
		return k, path, true
	}
	up := strings.ToUpper(name)
	if k, ok := byName[up]; ok {
		return k, "", true
	}
	if strings.HasPrefix(name, sysctlAliasPrefix) {
		rest := name[len(sysctlAliasPrefix):]
		if validSysctlPath(rest) {
			k := sysctlKey
			k.Name = sysctlPrefix + strings.ToUpper(strings.ReplaceAll(rest, ".", "_"))
			k.Aliases = []string{name}
			return &k, strings.ReplaceAll(rest, ".", "/"), true
		}
		return nil, "", false
	}
	if strings.HasPrefix(up, sysctlPrefix) && validSysctlName(up[len(sysctlPrefix):]) {
		k := sysctlKey
		k.Name = up
		return &k, "", true
	}
	return nil, "", false
}

// validSysctlName accepts A_B_C made of letters, digits, '-' and single
// underscores.
func validSysctlName(s string) bool {
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validSysctlPath accepts a.b_c.d: dot-separated non-empty elements of
// letters, digits, '_' and '-'.
func validSysctlPath(s string) bool {
	if s == "" {
		return false
	}
	for _, el := range strings.Split(s, ".") {
		if el == "" {
			return false
		}
		for _, c := range el {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}
