package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/runtime/storage"
)

// install uploads a revision to the device: the objects, then the state
// JSON as locals/<name>, then the commit message (-m). src is a pvr export
// tarball (.tar, .tgz, .gz: "json" then "objects/<sha>"), an unpacked
// export directory (json + objects/) or a checkout's .pvr directory.
func (p *prog) install(ctx context.Context, src, rev string) error {
	if !strings.HasPrefix(rev, "locals/") {
		rev = "locals/" + rev
	}
	fi, err := os.Stat(src)
	if err != nil {
		return &exitError{code: exitUnknown, err: err}
	}
	var state []byte
	if fi.IsDir() {
		state, err = p.installDir(ctx, src)
	} else {
		state, err = p.installTar(ctx, src)
	}
	if err != nil {
		return err
	}
	if err := p.send(ctx, "PUT", "/steps/"+revPath(rev), state, "steps"); err != nil {
		return err
	}
	if p.msg != "" {
		return p.send(ctx, "PUT", "/steps/"+revPath(rev)+"/commitmsg", []byte(p.msg), "")
	}
	return nil
}

func (p *prog) putObject(ctx context.Context, sha string, r io.Reader, size int64) error {
	if !storage.ValidSha(sha) {
		return &exitError{code: exitUnknown, err: fmt.Errorf("object %q: not a sha256", sha)}
	}
	return p.do(ctx, "PUT", "/objects/"+sha, r, size, "objects")
}

func (p *prog) installDir(ctx context.Context, dir string) ([]byte, error) {
	if _, err := os.Stat(filepath.Join(dir, ".pvr", "json")); err == nil {
		dir = filepath.Join(dir, ".pvr")
	}
	state, err := os.ReadFile(filepath.Join(dir, "json"))
	if err != nil {
		return nil, &exitError{code: exitUnknown, err: err}
	}
	ents, err := os.ReadDir(filepath.Join(dir, "objects"))
	if err != nil && !os.IsNotExist(err) {
		return nil, &exitError{code: exitUnknown, err: err}
	}
	for _, e := range ents {
		if !storage.ValidSha(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, "objects", e.Name()))
		if err != nil {
			return nil, &exitError{code: exitUnknown, err: err}
		}
		info, err := f.Stat()
		if err == nil {
			err = p.putObject(ctx, e.Name(), f, info.Size())
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return state, nil
}

func (p *prog) installTar(ctx context.Context, file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, &exitError{code: exitUnknown, err: err}
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &exitError{code: exitUnknown, err: fmt.Errorf("%s: %w", file, err)}
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	var state []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &exitError{code: exitUnknown, err: fmt.Errorf("%s: %w", file, err)}
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch {
		case name == "json":
			if state, err = io.ReadAll(io.LimitReader(tr, 64<<20)); err != nil {
				return nil, &exitError{code: exitUnknown, err: err}
			}
		case path.Dir(name) == "objects":
			if err := p.putObject(ctx, path.Base(name), tr, h.Size); err != nil {
				return nil, err
			}
		}
	}
	if state == nil {
		return nil, &exitError{code: exitUnknown, err: fmt.Errorf("%s: no json member", file)}
	}
	return state, nil
}
