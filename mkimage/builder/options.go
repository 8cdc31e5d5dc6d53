package builder

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
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
