package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/debpkg"
)

// pkgLock pins what each package request of a recipe resolved to, so
// offline rebuilds skip apt entirely: a request whose packages are all
// still in the cache (unpacked, hence verified when downloaded) is served
// from the lock. Online builds (apt-get update) resolve again and rewrite
// it. It lives in <cache>/locks/<target>-<arch>-<suite>.json.
type pkgLock struct {
	path    string
	Entries map[string][]debpkg.Package `json:"entries"`
	dirty   bool
}

func (b *run) loadLock() *pkgLock {
	l := &pkgLock{path: filepath.Join(b.o.Cache, "locks", fmt.Sprintf("%s-%s-%s.json", b.r.Name, b.r.Arch, b.r.Debian.Suite)),
		Entries: map[string][]debpkg.Package{}}
	if !b.o.Offline {
		return l // resolve again against fresh indexes
	}
	if data, err := os.ReadFile(l.path); err == nil {
		if err := json.Unmarshal(data, l); err != nil || l.Entries == nil {
			l.Entries = map[string][]debpkg.Package{}
		}
	}
	return l
}

// get returns the pinned packages of key when every one is usable from
// the cache.
func (l *pkgLock) get(cache, key string) ([]debpkg.Package, bool) {
	ps, ok := l.Entries[key]
	if !ok {
		return nil, false
	}
	for _, p := range ps {
		if _, err := os.Stat(filepath.Join(cache, "unpacked", p.SHA256, ".complete")); err != nil {
			return nil, false
		}
	}
	return ps, true
}

func (l *pkgLock) put(key string, ps []debpkg.Package) {
	l.Entries[key] = ps
	l.dirty = true
}

func (l *pkgLock) save() error {
	if !l.dirty {
		return nil
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return err
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, l.path)
}

// lockedArchive resolves through the lock first and opens the apt view
// (and refreshes its indexes) only on a miss.
type lockedArchive struct {
	b     *run
	lock  *pkgLock
	a     *debpkg.Archive
	hits  int
	apted bool
	// arch is another architecture's view ("" = the recipe's): the
	// host's, for build tools of the target (modules.extra).
	arch string
}

func (la *lockedArchive) archive(ctx context.Context) (*debpkg.Archive, error) {
	if la.a != nil {
		return la.a, nil
	}
	r := la.b.r
	arch := r.Arch
	if la.arch != "" {
		arch = la.arch
	}
	a, err := debpkg.New(debpkg.Options{Cache: filepath.Join(la.b.o.Cache, "deb"), Arch: arch, Mirror: r.Debian.Mirror,
		Suite: r.Debian.Suite, Components: r.Debian.Components, Keyring: r.Debian.Keyring, Log: la.b.o.Log})
	if err != nil {
		return nil, err
	}
	if !la.b.o.Offline || !a.HasIndexes() {
		if err := a.Update(ctx); err != nil {
			return nil, err
		}
	}
	la.a, la.apted = a, true
	return a, nil
}

// FetchAll is debpkg's FetchAll through the lock.
func (la *lockedArchive) FetchAll(ctx context.Context, names []string) ([]debpkg.Package, error) {
	key := "all " + strings.Join(names, " ")
	if la.arch != "" {
		key = la.arch + " " + key
	}
	if ps, ok := la.lock.get(la.b.o.Cache, key); ok {
		la.hits++
		return ps, nil
	}
	a, err := la.archive(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := a.FetchAll(ctx, names)
	if err == nil {
		la.lock.put(key, ps)
	}
	return ps, err
}

// FetchImage is debpkg's FetchImage through the lock.
func (la *lockedArchive) FetchImage(ctx context.Context, name, version, prefix string) (debpkg.Package, error) {
	key := "image " + name + "=" + version + " " + prefix
	if ps, ok := la.lock.get(la.b.o.Cache, key); ok && len(ps) == 1 {
		la.hits++
		return ps[0], nil
	}
	a, err := la.archive(ctx)
	if err != nil {
		return debpkg.Package{}, err
	}
	p, err := a.FetchImage(ctx, name, version, prefix)
	if err == nil {
		la.lock.put(key, []debpkg.Package{p})
	}
	return p, err
}
