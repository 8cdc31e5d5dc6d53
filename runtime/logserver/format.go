package logserver

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// clock turns entry times into the tsec/tnano fields: seconds since boot,
// or since the epoch when absolute.
type clock struct {
	boot     time.Time
	absolute bool
}

func (c clock) tsec(t time.Time) (sec, nano int64) {
	if c.absolute {
		return t.Unix(), int64(t.Nanosecond())
	}
	d := t.Sub(c.boot)
	if d < 0 {
		d = 0
	}
	return int64(d / time.Second), int64(d % time.Second)
}

// appendPVLine renders one pantavisor line:
// "[<plat>] [<ts>] <tsec> <LEVEL>\t -- [<src>]: <line>\n".
func appendPVLine(dst []byte, c clock, tf TimeFormat, r *record, line string) []byte {
	dst = append(dst, '[')
	dst = append(dst, r.Platform...)
	dst = append(dst, "] "...)
	if !tf.IsZero() {
		dst = append(dst, '[')
		dst = tf.Append(dst, r.Time)
		dst = append(dst, "] "...)
	}
	sec, _ := c.tsec(r.Time)
	dst = strconv.AppendInt(dst, sec, 10)
	dst = append(dst, ' ')
	dst = append(dst, r.Level.String()...)
	dst = append(dst, "\t -- ["...)
	dst = append(dst, r.Source...)
	dst = append(dst, "]: "...)
	dst = append(dst, line...)
	return append(dst, '\n')
}

// appendPVLines renders r's message one pantavisor line per '\n'-separated
// line (a final newline does not make an empty line).
func appendPVLines(dst []byte, c clock, tf TimeFormat, r *record) []byte {
	msg := strings.TrimSuffix(r.Msg, "\n")
	for {
		line, rest, more := strings.Cut(msg, "\n")
		dst = appendPVLine(dst, c, tf, r, line)
		if !more {
			return dst
		}
		msg = rest
	}
}

// Keys of the platform in JSON lines. The singlefile documentation shows
// "plat" (upstream code writes "platform" there too); the update output
// feeds the progress "logs", whose documentation and code both use
// "platform".
const (
	platKeySinglefile = "plat"
	platKeyUpdate     = "platform"
)

// appendJSONLine renders the singlefile/update JSON line:
// {"tsec":N,"tnano":N[,"ts":".."],"<platKey>":"..","lvl":"..","src":"..","msg":".."}.
func appendJSONLine(dst []byte, c clock, tf TimeFormat, r *record, platKey string) []byte {
	sec, nano := c.tsec(r.Time)
	dst = append(dst, `{"tsec":`...)
	dst = strconv.AppendInt(dst, sec, 10)
	dst = append(dst, `,"tnano":`...)
	dst = strconv.AppendInt(dst, nano, 10)
	if !tf.IsZero() {
		dst = append(dst, `,"ts":`...)
		dst = appendJSONString(dst, string(tf.Append(nil, r.Time)))
	}
	dst = append(dst, `,"`...)
	dst = append(dst, platKey...)
	dst = append(dst, `":`...)
	dst = appendJSONString(dst, r.Platform)
	dst = append(dst, `,"lvl":`...)
	dst = appendJSONString(dst, r.Level.String())
	dst = append(dst, `,"src":`...)
	dst = appendJSONString(dst, r.Source)
	dst = append(dst, `,"msg":`...)
	dst = appendJSONString(dst, r.Msg)
	return append(dst, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
