package bootenv

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// GrubSize is the size of a GRUB environment block. GRUB's save_env
// rewrites the file's blocks in place and Pantavisor reads exactly this
// many bytes, so the file is never shorter or longer.
const GrubSize = 1024

// GrubHeader starts every GRUB environment block.
const GrubHeader = "# GRUB Environment Block\n"

// ErrNotGrub means the data does not start with GrubHeader.
var ErrNotGrub = errors.New("not a GRUB environment block")

// ParseGrub reads the first GrubSize bytes of a GRUB environment block
// the way GRUB's envblk does: lines starting with '#' are comments (the
// padding is one), a backslash takes the next byte literally (so "\\\n"
// is a newline inside a value), a line is key=value. Lines without '='
// or with a key EncodeGrub would refuse (empty, with a backslash, NUL or
// newline) are skipped; a key set twice keeps its last value at its
// first place.
func ParseGrub(b []byte) (Vars, error) {
	if !bytes.HasPrefix(b, []byte(GrubHeader)) {
		return nil, ErrNotGrub
	}
	if len(b) > GrubSize {
		b = b[:GrubSize]
	}
	var vars Vars
	for rest := b[len(GrubHeader):]; len(rest) > 0; {
		line := rest
		end := grubLineEnd(rest)
		line, rest = rest[:end], rest[min(end+1, len(rest)):]
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok || !grubKeyOK(string(k)) {
			continue
		}
		vars.Set(string(k), grubUnescape(v))
	}
	return vars, nil
}

// grubLineEnd returns the index of the first newline not escaped by a
// backslash, or len(b).
func grubLineEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '\n':
			return i
		}
	}
	return len(b)
}

func grubUnescape(v []byte) string {
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v)
	}
	var s strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		s.WriteByte(v[i])
	}
	return s.String()
}

// grubKeyOK reports whether GRUB reads key back as written: it reads a
// key up to '=', takes a leading '#' as a comment and does not unescape
// keys.
func grubKeyOK(key string) bool {
	return key != "" && key[0] != '#' && !strings.ContainsAny(key, "=\n\\\x00")
}

// EncodeGrub writes a GRUB environment block: the header, one key=value
// line per variable in order (backslashes and newlines escaped as GRUB
// does), '#' padding to exactly GrubSize bytes.
func EncodeGrub(vars Vars) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(GrubHeader)
	for _, e := range vars {
		if !grubKeyOK(e.Key) {
			return nil, fmt.Errorf("grubenv: %w: key %q", ErrBadVar, e.Key)
		}
		b.WriteString(e.Key)
		b.WriteByte('=')
		for i := 0; i < len(e.Value); i++ {
			if c := e.Value[i]; c == '\\' || c == '\n' {
				b.WriteByte('\\')
			}
			b.WriteByte(e.Value[i])
		}
		b.WriteByte('\n')
	}
	if b.Len() > GrubSize {
		return nil, fmt.Errorf("grubenv: %w: %d bytes, the block has %d", ErrTooBig, b.Len(), GrubSize)
	}
	b.Write(bytes.Repeat([]byte{'#'}, GrubSize-b.Len()))
	return b.Bytes(), nil
}
