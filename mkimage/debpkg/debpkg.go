// Package debpkg fetches Debian binary packages for a target architecture
// into a content-addressed cache and unpacks them into a sysroot.
//
// It drives the host's apt with a private configuration (its own
// sources.list, lists directory and an empty dpkg status), so the host's
// package state is never touched and foreign architectures need no
// dpkg --add-architecture:
//
//	a, err := debpkg.New(debpkg.Options{Cache: ".cache/deb", Arch: "arm64", Suite: "bookworm", ...})
//	if err := a.Update(ctx); err != nil { ... }     // apt-get update (tolerated offline)
//	p, err := a.Fetch(ctx, "liblxc1", "")           // <cache>/<sha256>.deb, verified
//	err = debpkg.Unpack(ctx, p.Path, sysroot)       // dpkg -x
//
// Every .deb is verified against the SHA256 the archive's signed indexes
// give for it (apt-cache show) and stored as <cache>/<sha256>.deb, so a
// rebuild with the same indexes needs no network at all.
package debpkg

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotFound means the archive indexes have no such package (or version).
var ErrNotFound = errors.New("package not found")

// ErrChecksum means a downloaded .deb does not match the archive's SHA256.
var ErrChecksum = errors.New("checksum mismatch")

// Options configure an Archive.
type Options struct {
	// Cache is the cache directory: <cache>/<sha256>.deb plus apt state
	// under <cache>/apt/<suite>-<arch>.
	Cache string
	// Arch is the Debian architecture (amd64, arm64, ...).
	Arch string
	// Mirror, Suite, Components and Keyring describe the archive.
	Mirror     string
	Suite      string
	Components []string
	Keyring    string
	Log        *slog.Logger
}

// Archive is one (mirror, suite, arch) view of the Debian archive.
type Archive struct {
	o      Options
	aptDir string
}

// Package is a fetched, verified package.
type Package struct {
	Name, Version, Arch string
	SHA256              string
	// Path is <cache>/<sha256>.deb.
	Path string
	// Depends is the raw Depends field of the package.
	Depends string
	// Filename is the package's path in the archive (pool/…), relative
	// to the mirror; "" in locks written before it was recorded.
	Filename string `json:",omitempty"`
}

// New prepares the private apt configuration of an archive view.
func New(o Options) (*Archive, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Cache == "" || o.Arch == "" || o.Suite == "" || o.Mirror == "" {
		return nil, errors.New("debpkg: cache, arch, suite and mirror are required")
	}
	abs, err := filepath.Abs(o.Cache)
	if err != nil {
		return nil, fmt.Errorf("debpkg: %w", err)
	}
	o.Cache = abs
	// one apt state per archive view: two targets of one architecture with
	// other components (rpi's non-free-firmware) must not rewrite each
	// other's sources.list and lists, even when they build side by side
	view := sha256.Sum256([]byte(strings.Join(append([]string{o.Mirror, o.Keyring}, o.Components...), "\x00")))
	a := &Archive{o: o, aptDir: filepath.Join(o.Cache, "apt", o.Suite+"-"+o.Arch+"-"+hex.EncodeToString(view[:4]))}
	for _, d := range []string{"lists/partial", "archives/partial", "etc/preferences.d", "etc/sources.list.d", "etc/apt.conf.d"} {
		if err := os.MkdirAll(filepath.Join(a.aptDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("debpkg: %w", err)
		}
	}
	var src strings.Builder
	fmt.Fprintf(&src, "deb [arch=%s signed-by=%s] %s %s %s\n", o.Arch, o.Keyring, o.Mirror, o.Suite, strings.Join(o.Components, " "))
	if err := writeIfChanged(filepath.Join(a.aptDir, "etc/sources.list"), []byte(src.String())); err != nil {
		return nil, err
	}
	if err := writeIfChanged(filepath.Join(a.aptDir, "status"), nil); err != nil {
		return nil, err
	}
	return a, nil
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("debpkg: %w", err)
	}
	return nil
}

// aptArgs are the options that make apt use only our private state.
func (a *Archive) aptArgs() []string {
	d := a.aptDir
	return []string{
		"-o", "APT::Architecture=" + a.o.Arch,
		"-o", "APT::Architectures=" + a.o.Arch,
		"-o", "Dir::Etc=" + filepath.Join(d, "etc"),
		"-o", "Dir::Etc::SourceList=" + filepath.Join(d, "etc/sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(d, "etc/sources.list.d"),
		"-o", "Dir::Etc::Preferences=" + filepath.Join(d, "etc/preferences"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(d, "etc/preferences.d"),
		"-o", "Dir::Etc::Parts=" + filepath.Join(d, "etc/apt.conf.d"),
		"-o", "Dir::State=" + d,
		"-o", "Dir::State::Lists=" + filepath.Join(d, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(d, "status"),
		"-o", "Dir::Cache=" + d,
		"-o", "Dir::Cache::archives=" + filepath.Join(d, "archives"),
		"-o", "Debug::NoLocking=1",
		"-o", "APT::Get::AllowUnauthenticated=false",
		"-o", "Acquire::Languages=none",
		"-o", "APT::Sandbox::User=root",
	}
}

func (a *Archive) run(ctx context.Context, dir string, tool string, args ...string) ([]byte, error) {
	// apt runs without its own locks (Debug::NoLocking): builds side by
	// side share this state, so an update holds it alone, and the
	// others read lists no update is replacing.
	unlock, err := a.lock(len(args) > 1 && args[len(args)-1] == "update")
	if err != nil {
		return nil, err
	}
	defer unlock()
	cmd := exec.CommandContext(ctx, tool, append(a.aptArgs(), args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// lock takes the apt state's file lock, exclusive or shared.
func (a *Archive) lock(exclusive bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(a.aptDir, "pv.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("debpkg: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("debpkg: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// HasIndexes reports whether a previous Update left package indexes.
func (a *Archive) HasIndexes() bool {
	m, _ := filepath.Glob(filepath.Join(a.aptDir, "lists", "*_Packages*"))
	return len(m) > 0
}

// Update refreshes the package indexes (apt-get update). When it fails but
// indexes from an earlier run exist, it logs and carries on: offline
// rebuilds use the indexes and the cache as they are.
func (a *Archive) Update(ctx context.Context) error {
	_, err := a.run(ctx, a.aptDir, "apt-get", "-q", "update")
	if err != nil {
		if a.HasIndexes() {
			a.o.Log.Warn("apt-get update failed; using cached indexes", "arch", a.o.Arch, "err", err)
			return nil
		}
		return fmt.Errorf("debpkg: update indexes: %w", err)
	}
	return nil
}

// Show returns the index record of name (version "" = the candidate).
func (a *Archive) Show(ctx context.Context, name, version string) (Package, error) {
	if !validName(name) || !validVersion(version) {
		return Package{}, fmt.Errorf("debpkg: %q %q: %w", name, version, ErrNotFound)
	}
	if version == "" {
		out, err := a.run(ctx, a.aptDir, "apt-cache", "policy", name)
		if err != nil {
			return Package{}, fmt.Errorf("debpkg: %w", err)
		}
		version = candidate(out)
		if version == "" {
			return Package{}, fmt.Errorf("debpkg: %s (%s): %w", name, a.o.Arch, ErrNotFound)
		}
	}
	out, err := a.run(ctx, a.aptDir, "apt-cache", "show", name+"="+version)
	if err != nil {
		return Package{}, fmt.Errorf("debpkg: %s=%s (%s): %w: %w", name, version, a.o.Arch, ErrNotFound, err)
	}
	recs := ParseControl(out)
	for _, r := range recs {
		if r["Package"] == name && r["Version"] == version && (r["Architecture"] == a.o.Arch || r["Architecture"] == "all") {
			if !isSha(r["SHA256"]) {
				return Package{}, fmt.Errorf("debpkg: %s=%s: index has no SHA256", name, version)
			}
			return Package{Name: name, Version: version, Arch: r["Architecture"], SHA256: r["SHA256"], Depends: r["Depends"],
				Filename: r["Filename"], Path: filepath.Join(a.o.Cache, r["SHA256"]+".deb")}, nil
		}
	}
	return Package{}, fmt.Errorf("debpkg: %s=%s (%s): %w", name, version, a.o.Arch, ErrNotFound)
}

// Fetch makes sure name (at version, "" = candidate) is in the cache and
// verified, downloading it with apt-get download when needed.
func (a *Archive) Fetch(ctx context.Context, name, version string) (Package, error) {
	p, err := a.Show(ctx, name, version)
	if err != nil {
		return p, err
	}
	return p, a.download(ctx, p)
}

// download puts p into the cache unless a verified copy is there.
func (a *Archive) download(ctx context.Context, p Package) error {
	name := p.Name
	if sum, err := fileSHA256(p.Path); err == nil && sum == p.SHA256 {
		a.o.Log.Debug("deb cached", "package", name, "version", p.Version)
		return nil
	}
	tmp, err := os.MkdirTemp(a.o.Cache, "dl-")
	if err != nil {
		return fmt.Errorf("debpkg: %w", err)
	}
	defer os.RemoveAll(tmp)
	a.o.Log.Info("downloading", "package", name, "version", p.Version, "arch", a.o.Arch)
	if _, err := a.run(ctx, tmp, "apt-get", "-q", "download", name+"="+p.Version); err != nil {
		return fmt.Errorf("debpkg: download %s: %w", name, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("debpkg: download %s: got %d files, want 1", name, len(debs))
	}
	sum, err := fileSHA256(debs[0])
	if err != nil {
		return err
	}
	if sum != p.SHA256 {
		return fmt.Errorf("debpkg: %s=%s: %w: got %s, index says %s", name, p.Version, ErrChecksum, sum, p.SHA256)
	}
	if err := os.Rename(debs[0], p.Path); err != nil {
		return fmt.Errorf("debpkg: %w", err)
	}
	return nil
}

// FetchImage fetches a package and, when it is a metapackage (no files of
// its own, e.g. linux-image-amd64), follows its first dependency whose name
// starts with the same prefix, one level deep.
func (a *Archive) FetchImage(ctx context.Context, name, version, prefix string) (Package, error) {
	p, err := a.Fetch(ctx, name, version)
	if err != nil {
		return p, err
	}
	for _, dep := range DependNames(p.Depends) {
		if strings.HasPrefix(dep, prefix) && dep != name {
			a.o.Log.Info("following metapackage", "package", name, "to", dep)
			return a.Fetch(ctx, dep, "")
		}
	}
	return p, nil
}

// candidate extracts "Candidate: <v>" from apt-cache policy output.
func candidate(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(l, "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "(none)" {
				return ""
			}
			return v
		}
	}
	return ""
}

// DependNames returns the package names of a Depends field, first
// alternative of each, without version constraints or arch qualifiers.
func DependNames(field string) []string {
	var names []string
	for _, d := range strings.Split(field, ",") {
		d = strings.TrimSpace(strings.Split(d, "|")[0])
		d = strings.TrimSpace(strings.SplitN(d, "(", 2)[0])
		d = strings.SplitN(d, ":", 2)[0]
		if d != "" {
			names = append(names, d)
		}
	}
	return names
}

// ParseControl parses RFC822-style Debian control records (apt-cache show
// output). Continuation lines are joined with "\n".
func ParseControl(data []byte) []map[string]string {
	var recs []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			recs = append(recs, cur)
		}
		cur = map[string]string{}
		last = ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.TrimSpace(k)
			cur[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return recs
}

var (
	nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	verRe  = regexp.MustCompile(`^[A-Za-z0-9.+~:-]*$`)
)

func validName(s string) bool    { return nameRe.MatchString(s) }
func validVersion(s string) bool { return verRe.MatchString(s) }

func isSha(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("debpkg: hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Unpack extracts a .deb into dir with dpkg -x (no maintainer scripts run).
func Unpack(ctx context.Context, deb, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("debpkg: %w", err)
	}
	out, err := exec.CommandContext(ctx, "dpkg", "-x", deb, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("debpkg: dpkg -x %s: %w: %s", filepath.Base(deb), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Fields returns the control record of a .deb (dpkg-deb -f): Package,
// Version, Source, Homepage, ... as the package itself states them.
func Fields(ctx context.Context, deb string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb).Output()
	if err != nil {
		return nil, fmt.Errorf("debpkg: dpkg-deb -f %s: %w", filepath.Base(deb), err)
	}
	recs := ParseControl(out)
	if len(recs) != 1 {
		return nil, fmt.Errorf("debpkg: dpkg-deb -f %s: want one control record, got %d", filepath.Base(deb), len(recs))
	}
	return recs[0], nil
}

// candidates parses apt-cache policy output for several packages.
func candidates(out []byte) map[string]string {
	m := map[string]string{}
	cur := ""
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && l[0] != ' ' && strings.HasSuffix(l, ":") {
			cur = strings.SplitN(strings.TrimSuffix(l, ":"), ":", 2)[0]
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate:"); ok && cur != "" {
			if v = strings.TrimSpace(v); v != "(none)" {
				m[cur] = v
			}
		}
	}
	return m
}

// FetchAll fetches the candidate versions of names with two apt-cache
// calls in total (apt-cache start-up dominates when done per package).
func (a *Archive) FetchAll(ctx context.Context, names []string) ([]Package, error) {
	if len(names) == 0 {
		return nil, nil
	}
	for _, n := range names {
		if !validName(n) {
			return nil, fmt.Errorf("debpkg: %q: %w", n, ErrNotFound)
		}
	}
	out, err := a.run(ctx, a.aptDir, "apt-cache", append([]string{"policy"}, names...)...)
	if err != nil {
		return nil, fmt.Errorf("debpkg: %w", err)
	}
	cand := candidates(out)
	args := []string{"show"}
	for _, n := range names {
		v, ok := cand[n]
		if !ok {
			return nil, fmt.Errorf("debpkg: %s (%s): %w", n, a.o.Arch, ErrNotFound)
		}
		args = append(args, n+"="+v)
	}
	out, err = a.run(ctx, a.aptDir, "apt-cache", args...)
	if err != nil {
		return nil, fmt.Errorf("debpkg: %w", err)
	}
	recs := ParseControl(out)
	var pkgs []Package
	for _, n := range names {
		var found *Package
		for _, r := range recs {
			if r["Package"] == n && r["Version"] == cand[n] && (r["Architecture"] == a.o.Arch || r["Architecture"] == "all") && isSha(r["SHA256"]) {
				found = &Package{Name: n, Version: cand[n], Arch: r["Architecture"], SHA256: r["SHA256"], Depends: r["Depends"],
					Filename: r["Filename"], Path: filepath.Join(a.o.Cache, r["SHA256"]+".deb")}
				break
			}
		}
		if found == nil {
			return nil, fmt.Errorf("debpkg: %s=%s (%s): %w", n, cand[n], a.o.Arch, ErrNotFound)
		}
		if err := a.download(ctx, *found); err != nil {
			return nil, err
		}
		pkgs = append(pkgs, *found)
	}
	return pkgs, nil
}
