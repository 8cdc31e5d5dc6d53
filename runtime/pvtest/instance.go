package pvtest

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed helpers.sh
var helpersScript string

// Helpers returns the shell helper library sourced before test scripts.
func Helpers() string { return helpersScript }

// Instance is one App Engine installation with its own prefix, storage and
// run directory, all under Dir.
type Instance struct {
	Dir      string // everything of the instance
	Prefix   string // -prefix of pv-appengine: bin -> package, etc/, lib/
	Storage  string // PV_STORAGE_MNTPOINT
	RunDir   string // PV_SYSTEM_RUNDIR
	Socket   string // $RUN/pv-ctrl
	Cmdline  string // extra cmdline words
	Tool     string // the pvtest binary (json, children helpers)
	Fixtures string // dir of builtin fixture tarballs

	cmd     *exec.Cmd
	done    chan struct{}
	logFile *os.File
}

// isolation are the config keys that make an instance private; they are
// written after the test's own config so they always win.
func (in *Instance) isolation() string {
	return strings.Join([]string{
		"PV_STORAGE_MNTPOINT=" + in.Storage,
		"PV_CACHE_USRMETADIR=" + filepath.Join(in.Storage, "cache", "usrmeta"),
		"PV_CACHE_DEVMETADIR=" + filepath.Join(in.Storage, "cache", "devmeta"),
		"PV_LOG_DIR=" + filepath.Join(in.Storage, "logs") + "/",
		"PV_SYSTEM_RUNDIR=" + in.RunDir,
		"PV_DISK_VOLDIR=" + filepath.Join(in.Dir, "volumes"),
		"PV_SYSTEM_CONFDIR=" + filepath.Join(in.Dir, "configs"),
		"PV_SYSTEM_MEDIADIR=" + filepath.Join(in.Dir, "media"),
		"PV_SYSTEM_INIT_MODE=appengine",
	}, "\n") + "\n"
}

// NewInstance lays out an instance in dir from the App Engine package pkg.
// testConfig (may be nil) is appended to the package's default config.
func NewInstance(dir, pkg string, testConfig []byte, cmdline string) (*Instance, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	in := &Instance{Dir: dir, Prefix: filepath.Join(dir, "prefix"), Storage: filepath.Join(dir, "storage"),
		RunDir: filepath.Join(dir, "run"), Cmdline: cmdline}
	in.Socket = filepath.Join(in.RunDir, "pv-ctrl")
	for _, d := range []string{filepath.Join(in.Prefix, "etc"), filepath.Join(in.Prefix, "lib", "pantavisor"),
		in.Storage, in.RunDir, filepath.Join(dir, "volumes"), filepath.Join(dir, "configs"), filepath.Join(dir, "media"), filepath.Join(dir, "pvtx")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// bin is shared read-only; skel, the package dirs and the trust
	// stores are copied (pv-appengine copies the skel onto storage
	// and must never see a symlink there).
	for l, target := range map[string]string{
		filepath.Join(in.Prefix, "bin"): filepath.Join(pkg, "bin"),
	} {
		if err := os.Symlink(target, l); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"lib/pantavisor/skel", "lib/pantavisor/pvtx.d", "lib/pantavisor/pvtx.extra.d", "etc/pantavisor"} {
		if err := os.CopyFS(filepath.Join(in.Prefix, d), os.DirFS(filepath.Join(pkg, d))); err != nil {
			return nil, fmt.Errorf("copy package %s: %w", d, err)
		}
	}
	base, err := os.ReadFile(filepath.Join(pkg, "etc", "pantavisor-appengine.config"))
	if err != nil {
		return nil, fmt.Errorf("package config: %w", err)
	}
	conf := strings.NewReplacer("@PREFIX@", in.Prefix, "@STORAGE@", in.Storage).Replace(string(base))
	if len(testConfig) > 0 {
		conf += "\n" + string(testConfig) + "\n"
	}
	conf += in.isolation()
	if err := os.WriteFile(filepath.Join(in.Prefix, "etc", "pantavisor-appengine.config"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(in.helpersPath(), []byte(helpersScript), 0o644); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *Instance) helpersPath() string { return filepath.Join(in.Dir, "helpers.sh") }

// Bin is the path of a package binary.
func (in *Instance) Bin(name string) string { return filepath.Join(in.Prefix, "bin", name) }

// LogPath is the App Engine's combined output.
func (in *Instance) LogPath() string { return filepath.Join(in.Dir, "appengine.log") }

// Env is the environment of scripts and shells: the host's minus any
// PV_*/PH_* (they would override the config; PV_TEST_ARTIFACTS, where
// tests keep screenshots, is no config key) plus PVTEST_*.
func (in *Instance) Env(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "PV_") && !strings.HasPrefix(e, "PV_TEST_ARTIFACTS=") || strings.HasPrefix(e, "PH_") || strings.HasPrefix(e, "PVTEST_") ||
			strings.HasPrefix(e, "PVCONTROL_SOCKET=") || strings.HasPrefix(e, "PVTXDIR=") || strings.HasPrefix(e, "ENV=") {
			continue
		}
		env = append(env, e)
	}
	pid := ""
	if in.cmd != nil && in.cmd.Process != nil {
		pid = fmt.Sprint(in.cmd.Process.Pid)
	}
	env = append(env,
		"PVTEST_INSTANCE="+in.Dir, "PVTEST_PREFIX="+in.Prefix, "PVTEST_STORAGE="+in.Storage,
		"PVTEST_RUNDIR="+in.RunDir, "PVTEST_SOCKET="+in.Socket, "PVTEST_BIN="+filepath.Join(in.Prefix, "bin"),
		"PVTEST_TOOL="+in.Tool, "PVTEST_HELPERS="+in.helpersPath(), "PVTEST_APPENGINE_PID="+pid,
		"PVTEST_CMDLINE="+in.Cmdline, "PVTEST_FIXTURES="+in.Fixtures, "PVCONTROL_SOCKET="+in.Socket, "ENV="+in.helpersPath())
	return append(env, extra...)
}

// Start runs pv-appengine (first-run storage preparation, then the boot
// loop) in the background, logging to LogPath.
func (in *Instance) Start() error {
	f, err := os.OpenFile(in.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"-prefix", in.Prefix, "-d", "0"}
	if in.Cmdline != "" {
		args = append(args, "-c", in.Cmdline)
	}
	cmd := exec.Command(in.Bin("pv-appengine"), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = in.Dir
	cmd.Env = in.Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start pv-appengine: %w", err)
	}
	in.cmd, in.logFile, in.done = cmd, f, make(chan struct{})
	go func() {
		cmd.Wait()
		close(in.done)
	}()
	return nil
}

// Running reports whether pv-appengine still runs.
func (in *Instance) Running() bool {
	if in.done == nil {
		return false
	}
	select {
	case <-in.done:
		return false
	default:
		return true
	}
}

// Stop asks the App Engine to stop (SIGTERM: a lenient poweroff), then
// kills it after grace.
func (in *Instance) Stop(grace time.Duration) error {
	if in.cmd == nil {
		return nil
	}
	defer in.logFile.Close()
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-in.done:
	case <-time.After(5 * time.Second):
		return errors.New("pv-appengine did not die")
	}
	return errors.New("pv-appengine did not stop in time: killed")
}

// LogTail returns the last n bytes of the App Engine log.
func (in *Instance) LogTail(n int64) string {
	f, err := os.Open(in.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
