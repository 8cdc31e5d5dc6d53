package bootloader

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// Grub keeps the variables in a standard GRUB environment block
// (<storage>/boot/grubenv, runtime/bootenv): the header line,
// "key=value\n" lines, '#' padding to 1024 bytes. Keys Pantavisor does
// not own (pv_trying, written by grub.cfg's save_env) are kept.
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
	if err != nil || !bytes.HasPrefix(b, []byte(bootenv.GrubHeader)) || len(b) < bootenv.GrubSize {
		if err := g.write(nil); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (g *Grub) read() (bootenv.Vars, error) {
	b, err := os.ReadFile(g.path)
	if err != nil {
		return nil, err
	}
	vars, err := bootenv.ParseGrub(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.path, err)
	}
	return vars, nil
}

// write rewrites the block in place (writeInPlace): GRUB reads the
// storage without replaying the ext4 journal.
func (g *Grub) write(vars bootenv.Vars) error {
	b, err := bootenv.EncodeGrub(vars)
	if err != nil {
		return fmt.Errorf("%s: %w", g.path, err)
	}
	return writeInPlace(g.path, b)
}

// Get implements Env.
func (g *Grub) Get(key string) (string, error) {
	vars, err := g.read()
	if err != nil {
		return "", err
	}
	return vars.Get(key), nil
}

// Set implements Env.
func (g *Grub) Set(key, value string) error {
	if err := validVar(key, value); err != nil {
		return err
	}
	vars, err := g.read()
	if err != nil {
		return err
	}
	vars.Set(key, value)
	return g.write(vars)
}

// Unset implements Env with an empty value, as the GRUB script tests for
// emptiness.
func (g *Grub) Unset(key string) error { return g.Set(key, "") }

// Flush implements Env; every Set is already durable.
func (g *Grub) Flush() error { return nil }
