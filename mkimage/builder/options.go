package builder

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/pantavisor/pantavisor-go/mkimage/container"
)

// writePantahubConfig writes the factory config/pantahub.config of the
// storage tree: the recipe's config.pantahub, with PV_FACTORY_AUTOTOK as
// factory.autotok (PH_FACTORY_AUTOTOK, the token a new device claims
// itself with) when set.
func (b *run) writePantahubConfig(root string) error {
	var base []byte
	if b.r.Config.Pantahub != "" {
		data, err := os.ReadFile(b.repoFile(b.r.Config.Pantahub))
		if err != nil {
			return fmt.Errorf("config.pantahub: %w", err)
		}
		base = data
	}
	if b.o.AutoTok == "" {
		if base == nil {
			return nil
		}
		return writeFileAtomic(filepath.Join(root, "config", "pantahub.config"), base)
	}
	data, err := factoryConfig(base, b.o.AutoTok)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(root, "config", "pantahub.config"), data)
}

// autoTokKeys are the names pantahub.config knows the token by.
var autoTokKeys = []string{"factory.autotok", "PH_FACTORY_AUTOTOK"}

// checkAutoTok refuses tokens pantahub.config cannot carry on one
// key=value line.
func checkAutoTok(tok string) error {
	if len(tok) > 1024 {
		return fmt.Errorf("PV_FACTORY_AUTOTOK: longer than 1024 bytes")
	}
	for _, c := range tok {
		if unicode.IsSpace(c) || unicode.IsControl(c) || c > unicode.MaxASCII {
			return fmt.Errorf("PV_FACTORY_AUTOTOK %q: want printable ASCII without spaces", tok)
		}
	}
	return nil
}

// factoryConfig returns base with its token lines replaced by
// factory.autotok=tok.
func factoryConfig(base []byte, tok string) ([]byte, error) {
	if err := checkAutoTok(tok); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(base), "\n") {
		key, _, _ := strings.Cut(line, "=")
		if line == "" || isAutoTokKey(key) {
			continue
		}
		out.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			out.WriteByte('\n')
		}
	}
	fmt.Fprintf(&out, "%s=%s\n", autoTokKeys[0], tok)
	return out.Bytes(), nil
}

func isAutoTokKey(k string) bool {
	for _, a := range autoTokKeys {
		if k == a {
			return true
		}
	}
	return false
}

// writeFileAtomic writes p through a temporary and a rename.
func writeFileAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// sourceBSP is the bsp stage of PVR_USE_SRC_BSP=yes: the BSP entries of
// PVR_MERGE_SRC, each object checked against its name. The build signs
// trails/0 as usual; the source's initrd carries its own trust store,
// which must trust the build's signer (PVR_SIG_KEY) for the device to
// accept the revision.
func (b *run) sourceBSP() (*bspFiles, string, error) {
	e, err := container.LoadSourceBSP(b.o.MergeSrc, filepath.Join(b.work, "src-bsp"))
	if err != nil {
		return nil, "", fmt.Errorf("PVR_USE_SRC_BSP: %w", err)
	}
	if _, ok := e.Inline["bsp/run.json"]; !ok {
		return nil, "", fmt.Errorf("PVR_USE_SRC_BSP: %s has no bsp/run.json", b.o.MergeSrc)
	}
	bsp := &bspFiles{Objects: map[string]string{}, JSON: map[string]any{}}
	for k, p := range e.Objects {
		bsp.Objects[strings.TrimPrefix(k, "bsp/")] = p
	}
	for k, v := range e.Inline {
		bsp.JSON[strings.TrimPrefix(k, "bsp/")] = v
	}
	return bsp, fmt.Sprintf("(BSP of PVR_MERGE_SRC: %d objects, %d documents)", len(bsp.Objects), len(bsp.JSON)), nil
}
