package pantavisor

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/sshd"
)

// SSHKeysMeta is the user-meta key holding the debug ssh server's
// authorized keys (the seeds' pvr-sdk.authorized_keys).
const SSHKeysMeta = "pvr-sdk.authorized_keys"

// sshAddr is the address used when Options.SSHAddr is empty; the
// package's tests keep their daemons off the real port.
var sshAddr = sshd.DefaultAddr

// syncSSH starts or stops the debug ssh server to follow PV_DEBUG_SSH
// (ENABLE_SSH/DISABLE_SSH set it at the command level, user meta at the
// metadata level). It runs on the FSM goroutine, the server's only owner,
// once per WAIT round.
func (d *Daemon) syncSSH() {
	want := d.conf != nil && d.conf.Bool(config.DebugSSH)
	switch {
	case want && d.ssh == nil:
		if d.sshFailed {
			return // logged once; ENABLE_SSH after DISABLE_SSH retries
		}
		addr := d.opt.SSHAddr
		if addr == "" {
			addr = sshAddr
		}
		srv, err := sshd.Listen(sshd.Options{
			Addr:           addr,
			HostKeyDir:     d.storagePath(config.DropbearCacheDir),
			AuthorizedKeys: d.sshKeys,
			Enter:          d.sshEnter,
			Log:            d.log,
		})
		if err != nil {
			d.sshFailed = true
			d.log.Warn("debug ssh", "err", err)
			return
		}
		d.log.Info("debug ssh: listening", "addr", srv.Addr().String())
		go func() {
			if err := srv.Serve(); err != nil {
				d.log.Warn("debug ssh", "err", err)
			}
		}()
		d.ssh = srv
	case !want:
		d.sshFailed = false
		d.stopSSH()
	}
}

// stopSSH closes the debug ssh server and its sessions.
func (d *Daemon) stopSSH() {
	if d.ssh == nil {
		return
	}
	if err := d.ssh.Close(); err != nil {
		d.log.Warn("debug ssh: close", "err", err)
	}
	d.ssh = nil
	d.log.Info("debug ssh: stopped")
}

// sshKeys returns the authorized keys, as upstream finds them:
// PV_DEBUG_SSH_AUTHORIZED_KEYS unset or "__default__" is the user-meta
// key pvr-sdk.authorized_keys; otherwise it names a file in
// <PV_SYSTEM_ETCPANTAVISORDIR>/ssh (where pv-appengine installs
// PV_DEBUG_SSH_PUBKEY), or is an absolute path.
func (d *Daemon) sshKeys() ([]byte, error) {
	name := d.conf.Get(config.DebugSSHAuthorizedKeys)
	if name == "" || name == "__default__" {
		if v, ok := d.usrmeta.Get(SSHKeysMeta); ok {
			return v, nil
		}
		return nil, fmt.Errorf("user meta %s: %w", SSHKeysMeta, os.ErrNotExist)
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(d.conf.Get(config.SystemEtcPantavisorDir), "ssh", filepath.Base(name))
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

// sshEnter runs argv in a container of the running revision through the
// pventer applet of this multi-call binary (a separate process: LXC's
// attach forks, and a failure there stays out of the daemon).
func (d *Daemon) sshEnter(name string, argv []string) (*exec.Cmd, error) {
	lxcpath, _ := lxcPaths(d.conf, d.runDir)
	if _, err := os.Stat(filepath.Join(lxcpath, name, "config")); err != nil {
		return nil, fmt.Errorf("%q: %w", name, sshd.ErrNoContainer)
	}
	prog := d.opt.Pventer
	if len(prog) == 0 {
		prog = []string{"/proc/self/exe", "pventer"}
	}
	args := append(append(append([]string(nil), prog[1:]...), "-P", lxcpath, "-c", name, "--"), argv...)
	return exec.Command(prog[0], args...), nil
}
