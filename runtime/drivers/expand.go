package drivers

import (
	"errors"
	"fmt"
	"strings"
)

// ErrLine is a module line Expand cannot read.
var ErrLine = errors.New("bad driver module line")

// Expand reads one module line of bsp/drivers.json, "module [params…]",
// substituting ${user-meta:KEY} and ${device-meta:KEY} with the values
// meta gives (a missing key is empty, as upstream). It returns the module
// and its parameters, spaces normalised.
func Expand(line string, meta Meta) (module, params string, err error) {
	var b strings.Builder
	rest := line
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", "", fmt.Errorf("%w %q: unterminated ${", ErrLine, line)
		}
		ref := rest[i+2 : i+j]
		kind, key, ok := strings.Cut(ref, ":")
		if !ok || key == "" || (kind != "user-meta" && kind != "device-meta") {
			return "", "", fmt.Errorf("%w %q: ${%s}: want ${user-meta:KEY} or ${device-meta:KEY}", ErrLine, line, ref)
		}
		if meta != nil {
			if v, ok := meta(kind, key); ok {
				if strings.ContainsAny(v, "\n\x00") {
					return "", "", fmt.Errorf("%w %q: %s %q holds a newline or NUL", ErrLine, line, kind, key)
				}
				b.WriteString(v)
			}
		}
		rest = rest[i+j+1:]
	}
	f := strings.Fields(b.String())
	if len(f) == 0 {
		return "", "", fmt.Errorf("%w %q: no module", ErrLine, line)
	}
	if strings.ContainsAny(f[0], "/=") {
		return "", "", fmt.Errorf("%w %q: module name %q", ErrLine, line, f[0])
	}
	return f[0], strings.Join(f[1:], " "), nil
}
