package config

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer collects log output from concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNotImplementedWarning: a key this build does not implement, set to
// a value other than its default, is reported once, whatever the number
// of levels it is set at; keys at their default and implemented keys are
// not reported, and the value (maybe a secret) is never logged.
func TestNotImplementedWarning(t *testing.T) {
	if WDTMode.Implemented() || HubCredsSecret.Implemented() || !LogLevel.Implemented() {
		t.Skip("the table changed: pick other keys for this test")
	}
	dir := t.TempDir()
	conf := writeFile(t, dir, "pantavisor.config", "PV_WDT_MODE=disabled\nPV_WDT_TIMEOUT=15\nPV_LOG_LEVEL=3\n")
	ph := writeFile(t, dir, "pantahub.config", "PH_CREDS_SECRET=s3cr3t-value\nPH_CREDS_SECRET=s3cr3t-value\n")
	var out lockedBuffer
	c, err := Load(Options{
		ConfigFile: conf,
		Cmdline:    "pv_wdt.mode=always pv_sysctl.vm.swappiness=10",
		Env:        []string{"PV_WDT_MODE=startup", "PV_WDT_TIMEOUT=15s"},
		Log:        slog.New(slog.NewTextHandler(&out, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LoadPHConfig(ph); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("PV_WDT_MODE", "disabled", Policy); err != nil {
		t.Fatal(err)
	}
	count := func(name string) int {
		return strings.Count(out.String(), `msg="config: `+name+` is not implemented in this build; ignored"`)
	}
	for name, want := range map[string]int{
		"PV_WDT_MODE":             1, // file, cmdline, env and policy
		"PH_CREDS_SECRET":         1,
		"PV_SYSCTL_VM_SWAPPINESS": 1, // sysctls are not applied yet
		"PV_WDT_TIMEOUT":          0, // set to its default
		"PV_LOG_LEVEL":            0, // implemented
	} {
		if got := count(name); got != want {
			t.Errorf("warnings for %s = %d, want %d; log:\n%s", name, got, want, out.String())
		}
	}
	if strings.Contains(out.String(), "s3cr3t") {
		t.Errorf("log shows a secret value:\n%s", out.String())
	}
	if got := c.Get(WDTMode); got != "startup" {
		t.Errorf("Get(WDTMode) = %q, want startup (kept, for GET /config2)", got)
	}
}

const configImport = "github.com/pantavisor/pantavisor-go/runtime/config"

// keyIdents maps each Key variable declared in keys.go to its key name.
func keyIdents(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "keys.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 {
			return true
		}
		call, ok := vs.Values[0].(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			return true
		}
		if fn, ok := call.Fun.(*ast.Ident); !ok || fn.Name != "def" {
			return true
		}
		lit, ok := call.Args[0].(*ast.CompositeLit)
		if !ok {
			t.Fatalf("keys.go: %s: def of a %T, want a keyDef literal", vs.Names[0].Name, call.Args[0])
		}
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if id, ok := kv.Key.(*ast.Ident); !ok || id.Name != "Name" {
				continue
			}
			bl, ok := kv.Value.(*ast.BasicLit)
			if !ok {
				t.Fatalf("keys.go: %s: Name is not a string literal", vs.Names[0].Name)
			}
			name, err := strconv.Unquote(bl.Value)
			if err != nil {
				t.Fatal(err)
			}
			out[vs.Names[0].Name] = name
		}
		return true
	})
	return out
}

// keyReads scans the module's non-test Go files for reads of Key
// variables: config.X in other packages, X in this one outside keys.go.
// config.X.Name() takes only the name (to set the key, or in a message)
// and is not a read. It returns the files reading each identifier, and
// the files that apply the PV_SYSCTL_* keys.
func keyReads(t *testing.T, idents map[string]string) (reads map[string][]string, sysctls []string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	here, _ := filepath.Abs(".")
	reads = map[string][]string{}
	err = filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if n := de.Name(); path != root && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		inPkg := filepath.Dir(path) == here
		if inPkg && filepath.Base(path) == "keys.go" {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		pkg := "" // the name this file imports the config package as
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == configImport {
				pkg = "config"
				if imp.Name != nil {
					pkg = imp.Name.Name
				}
			}
		}
		if !inPkg && pkg == "" {
			return nil
		}
		// Identifiers that are not reads: selected fields and methods,
		// struct literal keys, and keys of which only Name() is taken.
		skip := map[*ast.Ident]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if !inPkg && (n.Sel.Name == "ApplySysctls" || n.Sel.Name == "Sysctls") {
					sysctls = append(sysctls, rel)
				}
				if inPkg {
					skip[n.Sel] = true
				}
				if n.Sel.Name == "Name" {
					switch x := n.X.(type) {
					case *ast.Ident:
						skip[x] = true
					case *ast.SelectorExpr:
						skip[x.Sel] = true
					}
				}
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok {
					skip[id] = true
				}
			}
			return true
		})
		seen := map[string]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			var id *ast.Ident
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && !inPkg && x.Name == pkg && !skip[n.Sel] {
					id = n.Sel
				}
			case *ast.Ident:
				if inPkg && !skip[n] {
					id = n
				}
			}
			if id != nil && idents[id.Name] != "" && !seen[id.Name] {
				seen[id.Name] = true
				reads[id.Name] = append(reads[id.Name], rel)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return reads, sysctls
}

// TestKeysReferenced keeps the table's status true (issue 11: 63 of 112
// keys were never read, and nothing said so): a key marked implemented is
// read by some code, and a key that code reads is marked implemented.
// The PV_SYSCTL_* keys are read together by ApplySysctls.
func TestKeysReferenced(t *testing.T) {
	idents := keyIdents(t)
	byKey := map[string]string{}
	for id, name := range idents {
		if prev, dup := byKey[name]; dup {
			t.Errorf("%s is declared twice: %s and %s", name, prev, id)
		}
		byKey[name] = id
	}
	if len(idents) != len(keyTable) {
		t.Errorf("keys.go declares %d Key variables, the table has %d keys", len(idents), len(keyTable))
	}
	reads, sysctls := keyReads(t, idents)
	if len(reads) == 0 {
		t.Fatal("no key is read anywhere: the scan is broken")
	}
	if sysctlKey.Todo != SysctlKernelCorePattern.d.Todo {
		t.Errorf("the PV_SYSCTL_* template says Todo %q, PV_SYSCTL_KERNEL_CORE_PATTERN %q", sysctlKey.Todo, SysctlKernelCorePattern.d.Todo)
	}
	var names []string
	for _, k := range keyTable {
		names = append(names, k.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		id := byKey[name]
		if id == "" {
			t.Errorf("%s has no Key variable in keys.go", name)
			continue
		}
		k, _ := Lookup(name)
		files := reads[id]
		if strings.HasPrefix(name, sysctlPrefix) {
			files = append(files, sysctls...)
		}
		switch {
		case k.Implemented() && len(files) == 0:
			t.Errorf("%s (config.%s) is marked implemented but no code reads it: read it, or set its Todo", name, id)
		case !k.Implemented() && len(files) > 0:
			t.Errorf("%s (config.%s) has Todo %q but is read by %s: clear its Todo", name, id, k.Todo(), strings.Join(files, ", "))
		}
	}
}
