package state

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting of arrays and objects, like encoding/json.
const maxDepth = 10000

// maxIntDigits bounds the digits written for an integer-valued number
// (for example 1e999999 would otherwise expand to a million zeros).
const maxIntDigits = 4096

// maxExp bounds the magnitude of a number's written exponent.
const maxExp = 1 << 30

// Canonical returns the canonical form of the JSON text raw, as written by
// pvr (gibson042 canonical JSON): no insignificant whitespace, object
// members sorted by the code points of their names, strings in UTF-8 with
// only '"', '\\' and control characters escaped (two-character escapes where
// they exist, else \u00XX with uppercase hex), integer-valued numbers written
// as plain integers of any size and other numbers in E-notation with a
// one-digit integer part (1.5 → 1.5E0, 0.001 → 1.0E-3).
//
// Invalid UTF-8 and lone surrogate escapes decode to U+FFFD, as they do in
// Go's encoding/json. Duplicate member names in one object are rejected
// (they would make the document ambiguous). Errors wrap ErrSyntax or
// ErrDuplicate.
func Canonical(raw []byte) ([]byte, error) {
	d := decoder{data: raw}
	d.skipSpace()
	out, err := d.value(make([]byte, 0, len(raw)))
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, d.errorf("unexpected data after top-level value")
	}
	return out, nil
}

// decoder is a strict JSON reader that writes canonical JSON as it goes.
type decoder struct {
	data  []byte
	pos   int
	depth int
	// stack holds the members of the objects being read, innermost last.
	stack []span
	// scratch is reused when reordering the members of an object.
	scratch []byte
	// top, when set, reports problems inside the members of the outermost
	// object as *Error naming the member (Parse uses it for state keys).
	top bool
}

// span is one object member written to the output: start, vstart and end
// delimit "name":value and value; esc reports an escape in the name.
type span struct {
	start, vstart, end int
	esc                bool
}

// spanName returns the decoded name of a member written to out.
func spanName(out []byte, sp span) string {
	s, _ := asString(out[sp.start : sp.vstart-1])
	return s
}

// compareSpans orders members by the code points of their names.
func compareSpans(out []byte, a, b span) int {
	if a.esc || b.esc {
		return strings.Compare(spanName(out, a), spanName(out, b))
	}
	// Without escapes the encoded names are the names.
	return bytes.Compare(out[a.start+1:a.vstart-2], out[b.start+1:b.vstart-2])
}

// member is one object member of canonical JSON: its name and value.
type member struct {
	name string
	val  []byte
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrSyntax, d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value appends the canonical form of the value at d.pos to dst.
func (d *decoder) value(dst []byte) ([]byte, error) {
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		out, _, err := d.object(dst)
		return out, err
	case c == '[':
		return d.array(dst)
	case c == '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return appendString(dst, s), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number(dst)
	case c == 't':
		return d.literal(dst, "true")
	case c == 'f':
		return d.literal(dst, "false")
	case c == 'n':
		return d.literal(dst, "null")
	default:
		return nil, d.errorf("unexpected character %q", c)
	}
}

func (d *decoder) literal(dst []byte, lit string) ([]byte, error) {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(lit)) {
		return nil, d.errorf("invalid literal")
	}
	d.pos += len(lit)
	return append(dst, lit...), nil
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.errorf("nesting deeper than %d", maxDepth)
	}
	return nil
}

// object appends the canonical form of the object at d.pos to dst. The
// returned spans describe its members in sorted order; they are only
// valid until the next call.
func (d *decoder) object(dst []byte) ([]byte, []span, error) {
	if err := d.enter(); err != nil {
		return nil, nil, err
	}
	isTop := d.top && d.depth == 1
	d.pos++ // '{'
	base := len(d.stack)
	objStart := len(dst)
	dst = append(dst, '{')
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return append(dst, '}'), nil, nil
	}
	for first := true; ; first = false {
		if !first {
			dst = append(dst, ',')
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, nil, d.topErr(isTop, nil, d.errorf("expected object member name"))
		}
		name, err := d.strBytes()
		if err != nil {
			return nil, nil, d.topErr(isTop, nil, err)
		}
		start := len(dst)
		dst = appendString(dst, name)
		esc := bytes.IndexByte(dst[start:], '\\') >= 0
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, nil, d.topErr(isTop, name, d.errorf("expected ':' after member name"))
		}
		dst = append(dst, ':')
		d.pos++
		d.skipSpace()
		vstart := len(dst)
		if dst, err = d.value(dst); err != nil {
			return nil, nil, d.topErr(isTop, name, err)
		}
		d.stack = append(d.stack, span{start: start, vstart: vstart, end: len(dst), esc: esc})
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, nil, d.topErr(isTop, nil, d.errorf("unexpected end of input in object"))
		}
		if d.data[d.pos] == ',' {
			d.pos++
			continue
		}
		if d.data[d.pos] != '}' {
			return nil, nil, d.topErr(isTop, name, d.errorf("expected ',' or '}' in object"))
		}
		d.pos++
		break
	}
	d.depth--
	ms := d.stack[base:]
	cmp := func(a, b span) int { return compareSpans(dst, a, b) }
	if !slices.IsSortedFunc(ms, cmp) {
		slices.SortFunc(ms, cmp)
		// Rewrite the members in sorted order.
		d.scratch = append(d.scratch[:0], dst[objStart+1:]...)
		off := objStart + 1
		dst = dst[:off]
		for i := range ms {
			if i > 0 {
				dst = append(dst, ',')
			}
			m := &ms[i]
			nstart := len(dst)
			dst = append(dst, d.scratch[m.start-off:m.end-off]...)
			m.vstart = nstart + (m.vstart - m.start)
			m.start, m.end = nstart, len(dst)
		}
	}
	for i := 1; i < len(ms); i++ {
		if compareSpans(dst, ms[i], ms[i-1]) == 0 {
			err := &dupError{name: spanName(dst, ms[i])}
			if isTop {
				return nil, nil, &Error{Key: err.name, Err: fmt.Errorf("%w: key appears more than once", ErrDuplicate)}
			}
			return nil, nil, err
		}
	}
	d.stack = d.stack[:base]
	return append(dst, '}'), ms, nil
}

// topErr attributes err to a member name of the outermost object when
// d.top is set (isTop).
func (d *decoder) topErr(isTop bool, name []byte, err error) error {
	if !isTop {
		return err
	}
	if se, ok := err.(*Error); ok {
		return se
	}
	return &Error{Key: string(name), Err: err}
}

func (d *decoder) array(dst []byte) ([]byte, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '['
	dst = append(dst, '[')
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return append(dst, ']'), nil
	}
	for first := true; ; first = false {
		if !first {
			dst = append(dst, ',')
		}
		d.skipSpace()
		var err error
		if dst, err = d.value(dst); err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of input in array")
		}
		if d.data[d.pos] == ',' {
			d.pos++
			continue
		}
		if d.data[d.pos] != ']' {
			return nil, d.errorf("expected ',' or ']' in array")
		}
		d.pos++
		break
	}
	d.depth--
	return append(dst, ']'), nil
}

// str reads a string token and returns its decoded value.
func (d *decoder) str() (string, error) {
	b, err := d.strBytes()
	return string(b), err
}

// strBytes reads a string token and returns its decoded bytes, which may
// alias the input.
func (d *decoder) strBytes() ([]byte, error) {
	d.pos++ // opening quote
	start := d.pos
	// Fast path: no escapes, valid UTF-8, no control characters.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := d.data[start:d.pos]
			d.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c < utf8.RuneSelf {
			d.pos++
			continue
		}
		r, n := utf8.DecodeRune(d.data[d.pos:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		d.pos += n
	}
	buf := make([]byte, 0, d.pos-start+16)
	buf = append(buf, d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return buf, nil
		case c < 0x20:
			return nil, d.errorf("control character in string")
		case c == '\\':
			var err error
			if buf, err = d.escape(buf); err != nil {
				return nil, err
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.pos++
		default:
			r, n := utf8.DecodeRune(d.data[d.pos:])
			d.pos += n
			buf = utf8.AppendRune(buf, r) // invalid bytes become U+FFFD
		}
	}
	return nil, d.errorf("unterminated string")
}

// escape decodes one backslash escape at d.pos and appends it to buf.
func (d *decoder) escape(buf []byte) ([]byte, error) {
	if d.pos+1 >= len(d.data) {
		return nil, d.errorf("unterminated escape")
	}
	c := d.data[d.pos+1]
	d.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(buf, c), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
		r, ok := d.hex4()
		if !ok {
			return nil, d.errorf("invalid \\u escape")
		}
		if utf16.IsSurrogate(r) {
			// Combine a high surrogate with a following low one.
			save := d.pos
			if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
				d.pos += 2
				if r2, ok := d.hex4(); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						return utf8.AppendRune(buf, dec), nil
					}
				}
			}
			d.pos = save
			r = utf8.RuneError
		}
		return utf8.AppendRune(buf, r), nil
	default:
		return nil, d.errorf("invalid escape character %q", c)
	}
}

func (d *decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.pos += 4
	return r, true
}

const upperHex = "0123456789ABCDEF"

// appendString writes s as a canonical JSON string.
func appendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// number reads a JSON number and appends its canonical form.
func (d *decoder) number(dst []byte) ([]byte, error) {
	p := d.pos
	neg := false
	if d.data[p] == '-' {
		neg = true
		p++
	}
	intStart := p
	if p < len(d.data) && d.data[p] == '0' {
		p++
	} else {
		for p < len(d.data) && d.data[p] >= '0' && d.data[p] <= '9' {
			p++
		}
	}
	if p == intStart {
		return nil, d.errorf("invalid number")
	}
	intDigits := d.data[intStart:p]
	var fracDigits []byte
	if p < len(d.data) && d.data[p] == '.' {
		p++
		fs := p
		for p < len(d.data) && d.data[p] >= '0' && d.data[p] <= '9' {
			p++
		}
		if p == fs {
			return nil, d.errorf("invalid number: no digits after '.'")
		}
		fracDigits = d.data[fs:p]
	}
	exp := 0
	if p < len(d.data) && (d.data[p] == 'e' || d.data[p] == 'E') {
		p++
		eneg := false
		if p < len(d.data) && (d.data[p] == '+' || d.data[p] == '-') {
			eneg = d.data[p] == '-'
			p++
		}
		es := p
		for p < len(d.data) && d.data[p] >= '0' && d.data[p] <= '9' {
			if exp <= maxExp {
				exp = exp*10 + int(d.data[p]-'0')
			}
			p++
		}
		if p == es {
			return nil, d.errorf("invalid number: no digits in exponent")
		}
		if exp > maxExp {
			return nil, d.errorf("number exponent out of range")
		}
		if eneg {
			exp = -exp
		}
	}
	d.pos = p
	out, err := appendCanonicalNumber(dst, neg, intDigits, fracDigits, exp)
	if err != nil {
		return nil, d.errorf("%v", err)
	}
	return out, nil
}

// appendCanonicalNumber writes ±int.frac×10^exp canonically.
func appendCanonicalNumber(dst []byte, neg bool, intDigits, fracDigits []byte, exp int) ([]byte, error) {
	// The value is digits × 10^e where digits = intDigits‖fracDigits.
	e := exp - len(fracDigits)
	var digits []byte
	if len(fracDigits) == 0 {
		digits = intDigits
	} else {
		digits = make([]byte, 0, len(intDigits)+len(fracDigits))
		digits = append(append(digits, intDigits...), fracDigits...)
	}
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		e++
	}
	if len(digits) == 0 {
		return append(dst, '0'), nil
	}
	if neg {
		dst = append(dst, '-')
	}
	if e >= 0 {
		if len(digits)+e > maxIntDigits {
			return nil, fmt.Errorf("number with more than %d integer digits", maxIntDigits)
		}
		dst = append(dst, digits...)
		for ; e > 0; e-- {
			dst = append(dst, '0')
		}
		return dst, nil
	}
	dst = append(dst, digits[0], '.')
	if len(digits) == 1 {
		dst = append(dst, '0')
	} else {
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'E')
	return fmt.Appendf(dst, "%d", e+len(digits)-1), nil
}

// dupError reports a member name that appears twice in one object.
type dupError struct{ name string }

func (e *dupError) Error() string { return fmt.Sprintf("duplicate object member %q", e.name) }

func (e *dupError) Unwrap() error { return ErrDuplicate }
