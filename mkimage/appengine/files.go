package appengine

// DefaultConfig is etc/pantavisor-appengine.config (upstream's
// appengine/pantavisor.config.in, spec §8). The install script replaces
// @PREFIX@ by the install prefix and @STORAGE@ by the storage directory.
const DefaultConfig = `PV_SYSTEM_INIT_MODE=appengine
PV_BOOTLOADER_TYPE=uboot
PV_WDT_MODE=disabled
PV_LOG_LEVEL=4
PV_LOG_SERVER_OUTPUTS=filetree
PV_LOG_CAPTURE_DMESG=0
PV_LOG_DIR_MAXSIZE=2147483647
PV_SECUREBOOT_HANDLERS=0
PV_SECUREBOOT_MODE=disabled
PV_DEBUG_SSH=1
PV_CONTROL_REMOTE=0
PV_UPDATER_GOALS_TIMEOUT=10
PV_UPDATER_COMMIT_DELAY=5
PV_STORAGE_MNTPOINT=@STORAGE@
PV_CACHE_USRMETADIR=@STORAGE@/cache/usrmeta
PV_SYSTEM_RUNDIR=/run/pantavisor/pv
PV_SYSTEM_ETCDIR=@PREFIX@/etc
PV_SYSTEM_ETCPANTAVISORDIR=@PREFIX@/etc/pantavisor
PV_SYSTEM_LIBDIR=@PREFIX@/lib
PV_OEM_NAME=pv-oem-developer-001
`

// InstallScript is the package's install script: copies the package into
// a prefix, fills in the config template and writes the launcher.
const InstallScript = `#!/bin/sh
# install: install Pantavisor App Engine into a prefix.
#
#   install <prefix>
#
# Storage goes to <prefix>/var/pantavisor/storage (/var/pantavisor/storage
# when the prefix is /usr). Run it afterwards with: <prefix>/pantavisor -i
set -eu
if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 <prefix>" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
storage=$prefix/var/pantavisor/storage
[ "$prefix" = /usr ] && storage=/var/pantavisor/storage
for d in bin lib etc; do
	mkdir -p "$prefix/$d"
	cp -R "$src/$d/." "$prefix/$d/"
done
sed -e "s|@PREFIX@|$prefix|g" -e "s|@STORAGE@|$storage|g" \
	"$src/etc/pantavisor-appengine.config" >"$prefix/etc/pantavisor-appengine.config"
mkdir -p "$storage"
cat >"$prefix/pantavisor" <<LAUNCHER
#!/bin/sh
# Runs Pantavisor App Engine in the foreground (options: pv-appengine -h).
exec "$prefix/bin/pv-appengine" -prefix "$prefix" "\$@"
LAUNCHER
chmod 0755 "$prefix/pantavisor"
echo "Pantavisor App Engine installed in $prefix"
echo "Run it with:"
echo "  sudo $prefix/pantavisor -i"
`
