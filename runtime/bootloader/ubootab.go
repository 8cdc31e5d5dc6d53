package bootloader

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// fitHeaderSize is the header in front of the FIT on each partition:
// "fit_rev=<rev>" padded with NULs.
const fitHeaderSize = 4096

// UbootABOptions configure uboot-ab (PV_BOOTLOADER_UBOOTAB_*).
type UbootABOptions struct {
	AName, BName        string // FIT partitions, default fitA/fitB
	EnvName, EnvBakName string // MTD partitions of the U-Boot env
	EnvOffset, EnvSize  int64

	FWEnvConfig string // generated fw_env.config, default /etc/fw_env.config
	FWPrintenv  string // default fw_printenv
	FWSetenv    string // default fw_setenv
}

// UbootAB keeps the variables in the U-Boot environment (through
// fw_printenv/fw_setenv) and writes each revision's FIT image to the
// inactive one of two MTD partitions.
type UbootAB struct {
	o    UbootABOptions
	a, b *MTD
}

func openUbootAB(o Options) (*UbootAB, error) {
	u := &UbootAB{o: o.UbootAB}
	if u.o.AName == "" {
		u.o.AName = "fitA"
	}
	if u.o.BName == "" {
		u.o.BName = "fitB"
	}
	if u.o.FWEnvConfig == "" {
		u.o.FWEnvConfig = "/etc/fw_env.config"
	}
	if u.o.FWPrintenv == "" {
		u.o.FWPrintenv = "fw_printenv"
	}
	if u.o.FWSetenv == "" {
		u.o.FWSetenv = "fw_setenv"
	}
	var err error
	if u.a, err = FindMTD(o.ProcMTD, u.o.AName); err != nil {
		return nil, err
	}
	if u.b, err = FindMTD(o.ProcMTD, u.o.BName); err != nil {
		return nil, err
	}
	if u.o.EnvName != "" {
		if err := u.writeFWEnvConfig(o.ProcMTD); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// writeFWEnvConfig describes the env (and its backup) to libubootenv.
func (u *UbootAB) writeFWEnvConfig(procMTD string) error {
	var b strings.Builder
	for _, name := range []string{u.o.EnvName, u.o.EnvBakName} {
		if name == "" {
			continue
		}
		m, err := FindMTD(procMTD, name)
		if err != nil {
			return err
		}
		size := u.o.EnvSize
		if size == 0 {
			size = m.EraseSize
		}
		fmt.Fprintf(&b, "%s %#x %#x %#x\n", m.Path, u.o.EnvOffset, size, m.EraseSize)
	}
	return writeFileAtomic(u.o.FWEnvConfig, []byte(b.String()))
}

// Get implements Env.
func (u *UbootAB) Get(key string) (string, error) {
	out, err := exec.Command(u.o.FWPrintenv, "-c", u.o.FWEnvConfig, "-n", key).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return "", nil // not defined
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", u.o.FWPrintenv, err)
	}
	return strings.TrimRight(string(out), "\n"), nil
}

// Set implements Env.
func (u *UbootAB) Set(key, value string) error {
	if err := validVar(key, value); err != nil {
		return err
	}
	args := []string{"-c", u.o.FWEnvConfig, key}
	if value != "" {
		args = append(args, value)
	}
	if out, err := exec.Command(u.o.FWSetenv, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", u.o.FWSetenv, key, err, bytes.TrimSpace(out))
	}
	return nil
}

// Unset implements Env.
func (u *UbootAB) Unset(key string) error { return u.Set(key, "") }

// Flush implements Env.
func (u *UbootAB) Flush() error { return nil }

// fitRev reads the revision named in a partition's header.
func fitRev(m *MTD) (string, []byte, error) {
	b, err := m.Read()
	if err != nil {
		return "", nil, err
	}
	if len(b) < fitHeaderSize {
		return "", nil, fmt.Errorf("%s: smaller than the %d-byte header", m.Path, fitHeaderSize)
	}
	h := b[:fitHeaderSize]
	if i := bytes.IndexAny(h, "\x00\xff"); i >= 0 {
		h = h[:i]
	}
	rev, ok := strings.CutPrefix(string(h), "fit_rev=")
	if !ok {
		return "", b[fitHeaderSize:], nil
	}
	return rev, b[fitHeaderSize:], nil
}

func fitHeader(rev string) []byte {
	h := make([]byte, fitHeaderSize)
	copy(h, "fit_rev="+rev)
	return h
}

// InstallUpdate writes trails/<rev>/.pv/pantavisor.fit to the inactive
// partition. When the active partition already holds the same FIT, only
// its header is renamed to rev and no reboot is needed.
func (u *UbootAB) InstallUpdate(rev, trailDir string) (bool, error) {
	fit, err := os.ReadFile(filepath.Join(trailDir, ".pv", "pantavisor.fit"))
	if err != nil {
		return false, err
	}
	try, err := u.Get(VarTry)
	if err != nil {
		return false, err
	}
	done, err := u.Get(VarRev)
	if err != nil {
		return false, err
	}
	active, inactive := u.a, u.b
	revA, bodyA, err := fitRev(u.a)
	if err != nil {
		return false, err
	}
	revB, bodyB, err := fitRev(u.b)
	if err != nil {
		return false, err
	}
	activeBody := bodyA
	want := done
	if try != "" {
		want = try
	}
	if revB == want && revA != want {
		active, inactive, activeBody = u.b, u.a, bodyB
	}
	if int64(fitHeaderSize+len(fit)) > inactive.Size {
		return false, fmt.Errorf("%s: FIT of %d bytes does not fit", inactive.Path, len(fit))
	}
	if sameFIT(activeBody, fit) {
		return false, writeHeader(active, activeBody, rev)
	}
	return true, inactive.Write(append(fitHeader(rev), fit...))
}

// sameFIT compares the FIT at the start of a partition body with fit.
func sameFIT(body, fit []byte) bool {
	if len(body) < len(fit) {
		return false
	}
	return sha256.Sum256(body[:len(fit)]) == sha256.Sum256(fit)
}

// writeHeader rewrites a partition's header, keeping the FIT behind it
// (its length is the flattened device tree's totalsize).
func writeHeader(m *MTD, body []byte, rev string) error {
	n := len(body)
	if len(body) >= 8 && binary.BigEndian.Uint32(body) == 0xd00dfeed {
		if size := int(binary.BigEndian.Uint32(body[4:])); size <= len(body) {
			n = size
		}
	}
	return m.Write(append(fitHeader(rev), body[:n]...))
}
