package logserver

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

func detectSeeds() [][]byte {
	var frames []byte
	frames = AppendFrame(frames, CodeLegacy, LegacyPayload(Info, "app", "src", "data\n"))
	frames = AppendFrame(frames, CodeCmd, CmdPayload(CmdStartUpdate, "5"))
	return [][]byte{
		[]byte(`<14>1 2024-01-01T00:00:00Z host myapp 123 ID1 [x@1 a="b]"] hello`),
		[]byte("<11>Jan  2 03:04:05 myd[12]: hello\x00"),
		[]byte(`{"version":"0","level":"WARN","src":"js","message":"hello json"}` + "\n"),
		[]byte(`level=DEBUG src=kv message="hello \"kv\""` + "\n"),
		frames,
		{0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f},
		{0, 1, 0, 0, 3, 0, 0, 0, '{', '}', 0},
		[]byte("<1>\n<999999>x\n[x\n"),
		[]byte("\xff\xfe\x00\x00\x00"),
	}
}

// FuzzDetect runs the stream splitter and every parser on arbitrary bytes:
// no panic, progress is made, text messages are capped and parsed entries
// always render as valid JSON lines.
func FuzzDetect(f *testing.F) {
	for _, s := range detectSeeds() {
		f.Add(s, uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const maxLine, maxFrame = 64, 256
		sp := newSplitter(maxLine, maxFrame)
		step := int(chunk%32) + 1
		c := clock{boot: time.Unix(0, 0)}
		check := func(m message) {
			if !m.binary && len(m.data) > maxLine {
				t.Fatalf("text message of %d bytes > MaxLine %d", len(m.data), maxLine)
			}
			var e Entry
			var err error
			switch {
			case !m.binary:
				e, _, err = ParseText(m.data)
			case m.code == CodeLegacy:
				e, err = ParseLegacy(m.data)
			default:
				_, err = ParseCmd(m.data)
				return
			}
			if err != nil {
				return
			}
			e.Platform = "p"
			line := appendJSONLine(nil, c, TimeFormat{}, &record{Entry: e}, platKeySinglefile)
			if !json.Valid(line) || !utf8.Valid(line) {
				t.Fatalf("invalid JSON line %q for %+v", line, e)
			}
			appendPVLine(nil, c, TimeFormat{}, &record{Entry: e}, e.Msg)
		}
		for off := 0; off < len(in); {
			end := off + step
			if end > len(in) {
				end = len(in)
			}
			space := sp.space()
			n := copy(space, in[off:end])
			if n == 0 {
				t.Fatalf("splitter has no space with %d bytes buffered", len(sp.buf)-sp.off)
			}
			sp.added(n)
			off += n
			for {
				m, ok, err := sp.next(false)
				if err != nil {
					return // connection dropped
				}
				if !ok {
					break
				}
				check(m)
			}
		}
		for {
			m, ok, err := sp.next(true)
			if err != nil || !ok {
				break
			}
			check(m)
		}
		ParseText(in)
	})
}

// FuzzLegacyFrame: LEGACY payloads parse without panic and what parses
// survives an encode/parse round trip.
func FuzzLegacyFrame(f *testing.F) {
	f.Add(LegacyPayload(Info, "app", "src", "data\n"))
	f.Add([]byte("5\x00\x00\x00"))
	f.Add([]byte("3\x00a\x00b\x00c\x00d\x00\x00"))
	f.Add([]byte("+3\x00a\x00b"))
	f.Fuzz(func(t *testing.T, buf []byte) {
		e, err := ParseLegacy(buf)
		if err != nil {
			return
		}
		if e.Level < Fatal || e.Level > All {
			t.Fatalf("level %d out of range", e.Level)
		}
		e2, err := ParseLegacy(LegacyPayload(e.Level, e.Platform, e.Source, e.Msg))
		if err != nil || e2 != e {
			t.Fatalf("round trip of %+v = %+v, %v", e, e2, err)
		}
		frame := AppendFrame(nil, CodeLegacy, buf)
		sp := newSplitter(64, len(buf)+1)
		copy(sp.space(), frame)
		sp.added(min(len(frame), cap(sp.buf)))
		if len(frame) <= cap(sp.buf) {
			m, ok, err := sp.next(false)
			if err != nil || !ok || !m.binary || string(m.data) != string(buf) {
				t.Fatalf("frame split = %+v %v %v", m, ok, err)
			}
		}
	})
}

// FuzzFdRequest: pv-fd-log messages parse without panic and round trip.
func FuzzFdRequest(f *testing.F) {
	f.Add(AppendFdRequest(nil, FdRequest{Platform: "a", Source: "b", Level: Info, Subscribe: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseFdRequest(b)
		if err != nil {
			return
		}
		if len(r.Platform) > 49 || len(r.Source) > 49 {
			return // full 50-byte names have no NUL to keep on re-encode
		}
		r2, err := ParseFdRequest(AppendFdRequest(nil, r))
		if err != nil || r2 != r {
			t.Fatalf("round trip of %+v = %+v, %v", r, r2, err)
		}
	})
}

// FuzzKmsg: any /dev/kmsg line parses without panicking to a severity
// 0-7 (or -1 without a prefix) and a message that is the line's tail.
func FuzzKmsg(f *testing.F) {
	for _, s := range []string{"6,1234,5678,-;usb 1-1: new device", " SUBSYSTEM=usb", "no prefix", "99999999999999,1;x", ";", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		pri, msg, ok := parseKmsg(line)
		if !ok {
			return
		}
		if pri < -1 || pri > 7 || !bytes.HasSuffix(line, msg) {
			t.Fatalf("parseKmsg(%q) = %d %q", line, pri, msg)
		}
	})
}
