package bootloader

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

const (
	grubHeader  = "# GRUB Environment Block\n"
	grubEnvSize = 1024
)

// Grub keeps the variables in a standard GRUB environment block
// (<storage>/boot/grubenv): the header line, "key=value\n" lines, '#'
// padding to 1024 bytes. Keys Pantavisor does not own (pv_trying, written
// by grub.cfg's save_env) are kept.
type Grub struct {
	path string
}

// OpenGrub returns the backend for path, creating a fresh block when the
// file is missing or its header is not a GRUB env header.
func OpenGrub(path string) (*Grub, error) {
	g := &Grub{path: path}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil || !bytes.HasPrefix(b, []byte(grubHeader)) || len(b) < grubEnvSize {
		if err := g.write(&grubBlock{vals: map[string]string{}}); err != nil {
			return nil, err
		}
	}
	return g, nil
}

type grubBlock struct {
	keys []string
	vals map[string]string
}

// parseGrubEnv decodes a GRUB env block; lines starting with '#' and the
// padding are skipped, GRUB's backslash escapes are undone.
func parseGrubEnv(b []byte) (*grubBlock, error) {
	if !bytes.HasPrefix(b, []byte(grubHeader)) {
		return nil, errors.New("not a GRUB environment block")
	}
	if len(b) > grubEnvSize {
		b = b[:grubEnvSize]
	}
	g := &grubBlock{vals: map[string]string{}}
	for _, line := range strings.Split(string(b[len(grubHeader):]), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		v = unescapeGrub(v)
		if _, seen := g.vals[k]; !seen {
			g.keys = append(g.keys, k)
		}
		g.vals[k] = v
	}
	return g, nil
}

func unescapeGrub(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
			if v[i] == 'n' {
				b.WriteByte('\n')
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func (g *grubBlock) encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(grubHeader)
	for _, k := range g.keys {
		v := strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(g.vals[k])
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	if b.Len() > grubEnvSize {
		return nil, fmt.Errorf("grub env needs %d bytes, the block has %d", b.Len(), grubEnvSize)
	}
	for b.Len() < grubEnvSize {
		b.WriteByte('#')
	}
	return b.Bytes(), nil
}

func (g *Grub) read() (*grubBlock, error) {
	b, err := os.ReadFile(g.path)
	if err != nil {
		return nil, err
	}
	blk, err := parseGrubEnv(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.path, err)
	}
	return blk, nil
}

// write rewrites the block in place: GRUB reads the storage without
// replaying the ext4 journal, so a file replaced by rename can look
// unchanged to it until the journal is checkpointed (a reboot right after
// an update would boot the old revision). An in-place rewrite keeps the
// inode and its blocks, changes only data, and is on disk once synced,
// the way GRUB's own save_env writes it. A missing or short file is
// created once, atomically.
func (g *Grub) write(blk *grubBlock) error {
	b, err := blk.encode()
	if err != nil {
		return fmt.Errorf("%s: %w", g.path, err)
	}
	f, err := os.OpenFile(g.path, os.O_WRONLY, 0)
	if err != nil {
		return writeFileAtomic(g.path, b)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(b)) {
		f.Close()
		return writeFileAtomic(g.path, b)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", g.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", g.path, err)
	}
	return f.Close()
}

// Get implements Env.
func (g *Grub) Get(key string) (string, error) {
	blk, err := g.read()
	if err != nil {
		return "", err
	}
	return blk.vals[key], nil
}

// Set implements Env.
func (g *Grub) Set(key, value string) error {
	if err := validVar(key, value); err != nil {
		return err
	}
	blk, err := g.read()
	if err != nil {
		return err
	}
	if _, ok := blk.vals[key]; !ok {
		blk.keys = append(blk.keys, key)
	}
	blk.vals[key] = value
	return g.write(blk)
}

// Unset implements Env with an empty value, as the GRUB script tests for
// emptiness.
func (g *Grub) Unset(key string) error { return g.Set(key, "") }

// Flush implements Env; every Set is already durable.
func (g *Grub) Flush() error { return nil }
