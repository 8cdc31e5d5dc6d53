package bootenv

import (
	"bytes"
	"fmt"
	"strings"
)

// Sizes of the NUL-separated env files.
const (
	// UbootTxtSize: Pantavisor rewrites boot/uboot.txt as a whole 64 KiB
	// buffer (upstream does; the boot script imports the file's size).
	UbootTxtSize = 64 << 10
	// UbootTxtReadMax: only the first KiB of uboot.txt is read back, so
	// the variables must end within it.
	UbootTxtReadMax = 1024
	// RPiABSize is the size of boot/rpiab.txt.
	RPiABSize = 512
)

// ParseNul reads U-Boot's binary "env import" format from at most the
// first limit bytes of b (limit <= 0: all of b): "key=value" entries,
// each NUL-terminated, ending at an empty entry ("\x00\x00") or at
// erased flash (0xff). An unterminated last entry is taken as it is;
// entries without '=' or with an empty key are skipped, as U-Boot does.
func ParseNul(b []byte, limit int) Vars {
	if limit > 0 && len(b) > limit {
		b = b[:limit]
	}
	var vars Vars
	for len(b) > 0 && b[0] != 0 && b[0] != 0xff {
		entry := b
		if end := bytes.IndexByte(b, 0); end >= 0 {
			entry, b = b[:end], b[end+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(entry, []byte("="))
		if !ok || len(k) == 0 {
			continue
		}
		vars.Set(string(k), string(v))
	}
	return vars
}

// EncodeNul writes the variables as NUL-terminated entries and the
// terminating empty entry, padded with fill up to size (size <= 0: no
// padding). Unset variables are written with an empty value, which
// "env import" treats as a delete.
func EncodeNul(vars Vars, size int, fill byte) ([]byte, error) {
	var b bytes.Buffer
	for _, e := range vars {
		// What ParseNul reads back: no NUL inside an entry, a key
		// without '=' that does not start like erased flash.
		if e.Key == "" || e.Key[0] == 0xff || strings.ContainsAny(e.Key, "=\x00") || strings.IndexByte(e.Value, 0) >= 0 {
			return nil, fmt.Errorf("%w: %q", ErrBadVar, e.Key)
		}
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
		b.WriteByte(0)
	}
	b.WriteByte(0)
	if size > 0 && b.Len() > size {
		return nil, fmt.Errorf("%w: needs %d bytes, has room for %d", ErrTooBig, b.Len(), size)
	}
	for b.Len() < size {
		b.WriteByte(fill)
	}
	return b.Bytes(), nil
}
