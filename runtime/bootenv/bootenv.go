// Package bootenv defines the boot environment formats Pantavisor shares
// with boot loaders, once, for both sides: mkimage writes the factory
// state with them and runtime/bootloader reads and rewrites it.
//
//   - GRUB's environment block (boot/grubenv): a 1024-byte block, the
//     "# GRUB Environment Block" header, key=value lines, '#' padding.
//   - U-Boot's NUL-separated env, the "env import" format of
//     boot/uboot.txt, of the Raspberry Pi's boot/rpiab.txt and of a raw
//     MTD env partition.
//   - The Raspberry Pi tryboot files: autoboot.txt on the boot selector
//     partition and pv_rev.txt, the revision list of a boot partition.
//
// Variables keep their order, so a rewrite changes only what it must.
//
//	vars := bootenv.Vars{{Key: "pv_rev", Value: "0"}}
//	block, err := bootenv.EncodeGrub(vars)         // 1024 bytes
//	vars, err = bootenv.ParseGrub(block)
//	txt, err := bootenv.EncodeNul(vars, 0, 0)      // "pv_rev=0\x00\x00"
package bootenv

import (
	"errors"
	"fmt"
	"strings"
)

// Var is one variable.
type Var struct {
	Key, Value string
}

// Vars are variables in file order; each key appears once.
type Vars []Var

// ErrTooBig means the variables do not fit into the format's size.
var ErrTooBig = errors.New("boot environment too big")

// ErrBadVar means a key or value cannot be stored: an empty key, a key
// with '=', or a NUL or newline anywhere (no format here can hold them
// unambiguously for every reader).
var ErrBadVar = errors.New("bad boot environment variable")

// Get returns key's value, "" when unset.
func (v Vars) Get(key string) string {
	for _, e := range v {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

// Has reports whether key is set (possibly to "").
func (v Vars) Has(key string) bool {
	for _, e := range v {
		if e.Key == key {
			return true
		}
	}
	return false
}

// Set replaces key's value in place or appends it.
func (v *Vars) Set(key, value string) {
	for i := range *v {
		if (*v)[i].Key == key {
			(*v)[i].Value = value
			return
		}
	}
	*v = append(*v, Var{key, value})
}

// Check reports the first variable that no format can hold.
func (v Vars) Check() error {
	for _, e := range v {
		if err := CheckVar(e.Key, e.Value); err != nil {
			return err
		}
	}
	return nil
}

// CheckVar reports whether key=value can be stored.
func CheckVar(key, value string) error {
	if key == "" || strings.ContainsAny(key, "=\x00\n") {
		return fmt.Errorf("%w: key %q", ErrBadVar, key)
	}
	if strings.ContainsAny(value, "\x00\n") {
		return fmt.Errorf("%w: value of %s", ErrBadVar, key)
	}
	return nil
}
