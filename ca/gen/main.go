// Command gen makes a pvs signing CA: a root certificate and key, and a
// code-signing leaf certificate and key issued by it, as PEM files:
//
//	go run ./ca/gen [-dir ca/developer] [-ca-cn NAME] [-cn NAME] [-force]
//	go run ./ca/gen -dir DIR -issue [-cn NAME]   # new leaf from DIR's ca.crt/ca.key
//
// Files: ca.crt (the device trust store, PV_PVS_CERT_PEM), ca.key,
// signer.key (PVR_SIG_KEY) and signer.crt (the x5c chain, PVR_X5C_PATH).
// ECDSA P-256, valid from 1970 to 9999 (see mkimage/sign). Keys are
// random: every run makes a new CA. ca/README.md says how to use it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/mkimage/sign"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("gen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", "ca/developer", "output directory")
	caCN := fl.String("ca-cn", "Pantavisor-Go Developer CA (PUBLIC, NOT FOR PRODUCTION)", "common name of the CA")
	cn := fl.String("cn", "pv-developer-001", "common name of the signing certificate")
	issue := fl.Bool("issue", false, "keep dir's ca.crt/ca.key and issue a new signing certificate")
	force := fl.Bool("force", false, "overwrite existing files")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return errors.New("no arguments expected")
	}
	files, err := sign.Generate(*dir, *caCN, *cn, *issue)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	names := []string{sign.FileCACert, sign.FileCAKey, sign.FileSignerKey, sign.FileSignerCert}
	if !*force && !*issue {
		for _, n := range names {
			if _, ok := files[n]; !ok {
				continue
			}
			if _, err := os.Stat(filepath.Join(*dir, n)); err == nil {
				return fmt.Errorf("%s exists (use -force to replace it)", filepath.Join(*dir, n))
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	for _, n := range names {
		data, ok := files[n]
		if !ok {
			continue
		}
		if err := os.WriteFile(filepath.Join(*dir, n), data, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", filepath.Join(*dir, n))
	}
	return nil
}
