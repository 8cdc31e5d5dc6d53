package logserver

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Protocol identifies how a pv-ctrl-log message was encoded.
type Protocol int

// Protocols of pv-ctrl-log, in detection order.
const (
	ProtoUnknown Protocol = iota
	ProtoRFC5424
	ProtoRFC3164
	ProtoJSON
	ProtoKV
	ProtoLegacy
	ProtoCmd
)

var protoNames = [...]string{"unknown", "rfc5424", "rfc3164", "json", "kv", "legacy", "cmd"}

// String names the protocol ("rfc5424", "json", …).
func (p Protocol) String() string {
	if p < 0 || int(p) >= len(protoNames) {
		return "unknown"
	}
	return protoNames[p]
}

// Binary frame codes (struct logserver_msg.code).
const (
	CodeLegacy = 0
	CodeCmd    = 256
)

// Command codes carried by CMD frames.
const (
	CmdExit        = 1
	CmdStartUpdate = 2
	CmdStopUpdate  = 3
	CmdTransition  = 4
)

// Errors returned by the parsers.
var (
	ErrUnknownProtocol = errors.New("unknown log protocol")
	ErrBadFrame        = errors.New("bad log frame")
)

// defaultSource is used when a text protocol names no source.
const defaultSource = "syslog"

// ParseText detects and parses one text message of pv-ctrl-log in spec
// order: RFC5424/RFC3164 ("<pri>"), JSON, key/value. Text protocols take
// the platform from the sender's cgroup; the returned Platform is only the
// RFC5424 HOSTNAME, used when the cgroup names no platform.
func ParseText(msg []byte) (Entry, Protocol, error) {
	msg = bytes.TrimRight(msg, "\r\n\x00")
	if e, p, ok := parseRFC(msg); ok {
		return e, p, nil
	}
	if len(msg) > 0 && msg[0] == '{' {
		if e, err := parseJSON(msg); err == nil {
			return e, ProtoJSON, nil
		}
	}
	if e, err := parseKV(msg); err == nil {
		return e, ProtoKV, nil
	}
	return Entry{}, ProtoUnknown, ErrUnknownProtocol
}

// parseRFC parses "<pri>" + RFC5424 ("1 ...") or RFC3164.
func parseRFC(b []byte) (Entry, Protocol, bool) {
	if len(b) < 3 || b[0] != '<' {
		return Entry{}, 0, false
	}
	i := 1
	for i < len(b) && i <= 5 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 1 || i > 5 || i >= len(b) || b[i] != '>' {
		return Entry{}, 0, false
	}
	pri, _ := strconv.Atoi(string(b[1:i]))
	rest := b[i+1:]
	e := Entry{Level: syslogLevel(pri & 7)}
	if len(rest) > 0 && rest[0] == '1' && (len(rest) == 1 || rest[1] == ' ') {
		parse5424(&e, rest)
		return e, ProtoRFC5424, true
	}
	parse3164(&e, rest)
	return e, ProtoRFC3164, true
}

// nextField splits off the next space-separated field.
func nextField(b []byte) (field, rest []byte) {
	b = bytes.TrimLeft(b, " ")
	j := bytes.IndexByte(b, ' ')
	if j < 0 {
		return b, nil
	}
	return b[:j], b[j+1:]
}

// parse5424: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG].
func parse5424(e *Entry, b []byte) {
	_, b = nextField(b) // version
	_, b = nextField(b) // timestamp
	host, b := nextField(b)
	app, b := nextField(b)
	_, b = nextField(b) // procid
	_, b = nextField(b) // msgid
	b = bytes.TrimLeft(b, " ")
	b = skipStructuredData(b)
	if len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // BOM
	e.Source = string(app)
	if e.Source == "" || e.Source == "-" {
		e.Source = defaultSource
	}
	if string(host) != "-" {
		e.Platform = string(host) // a hint only: the cgroup decides
	}
	e.Msg = string(b)
}

// skipStructuredData skips "-" or a sequence of "[...]" elements, honouring
// quoted parameter values with \" \] \\ escapes.
func skipStructuredData(b []byte) []byte {
	if len(b) > 0 && b[0] == '-' {
		return b[1:]
	}
	for len(b) > 0 && b[0] == '[' {
		inq := false
		j := 1
		for ; j < len(b); j++ {
			c := b[j]
			if c == '\\' && inq {
				j++
				continue
			}
			if c == '"' {
				inq = !inq
			} else if c == ']' && !inq {
				break
			}
		}
		if j >= len(b) {
			return nil
		}
		b = b[j+1:]
	}
	return b
}

var months = []string{"Jan ", "Feb ", "Mar ", "Apr ", "May ", "Jun ", "Jul ", "Aug ", "Sep ", "Oct ", "Nov ", "Dec "}

// parse3164: [TIMESTAMP ][HOSTNAME ]TAG[PID]: MSG; glibc's syslog() omits
// the hostname, so the tag is recognised by its ':' or '['.
func parse3164(e *Entry, b []byte) {
	if len(b) >= 16 && b[15] == ' ' {
		for _, m := range months {
			if string(b[:4]) == m {
				b = b[16:]
				break
			}
		}
	}
	tag, msg, ok := takeTag(b)
	if !ok {
		// maybe "HOSTNAME TAG: msg"
		_, r := nextField(b)
		if t, m, ok2 := takeTag(r); ok2 && r != nil {
			tag, msg, ok = t, m, true
		}
	}
	if !ok {
		e.Source = defaultSource
		e.Msg = string(b)
		return
	}
	e.Source = tag
	e.Msg = string(msg)
}

// takeTag recognises "tag: ", "tag[pid]: " at the start of b.
func takeTag(b []byte) (string, []byte, bool) {
	f, rest := nextField(b)
	if len(f) == 0 || len(f) > 64 {
		return "", nil, false
	}
	if k := bytes.IndexByte(f, '['); k > 0 && bytes.HasSuffix(f, []byte("]:")) {
		return string(f[:k]), rest, true
	}
	if len(f) > 1 && f[len(f)-1] == ':' && bytes.IndexByte(f, '[') < 0 {
		return string(f[:len(f)-1]), rest, true
	}
	return "", nil, false
}

// jsonMsg is the JSON protocol: {"version":"0","level":..,"src":..,"message":..}.
type jsonMsg struct {
	Version json.RawMessage `json:"version"`
	Level   json.RawMessage `json:"level"`
	Src     *string         `json:"src"`
	Message *string         `json:"message"`
}

func parseJSON(b []byte) (Entry, error) {
	var m jsonMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return Entry{}, fmt.Errorf("json log message: %w", err)
	}
	if m.Version != nil {
		v := strings.Trim(string(m.Version), `"`)
		if v != "0" {
			return Entry{}, fmt.Errorf("json log message: version %s: unsupported", m.Version)
		}
	}
	if m.Level == nil || m.Src == nil || m.Message == nil {
		return Entry{}, errors.New("json log message: level, src and message are required")
	}
	lvl, err := ParseLevel(strings.Trim(string(m.Level), `"`))
	if err != nil {
		return Entry{}, fmt.Errorf("json log message: level: %w", err)
	}
	return Entry{Level: lvl, Source: *m.Src, Msg: *m.Message}, nil
}

// parseKV parses `level=INFO src=app message="text with \"quotes\""`.
// level, src and message are required; an unquoted message takes the rest of
// the line.
func parseKV(b []byte) (Entry, error) {
	var lvl, src, msg string
	var haveL, haveS, haveM bool
	for {
		b = bytes.TrimLeft(b, " \t")
		if len(b) == 0 {
			break
		}
		eq := bytes.IndexByte(b, '=')
		sp := bytes.IndexAny(b, " \t")
		if eq <= 0 || (sp >= 0 && sp < eq) {
			return Entry{}, errors.New("kv log message: expected key=value")
		}
		key := string(b[:eq])
		b = b[eq+1:]
		var val string
		if len(b) > 0 && b[0] == '"' {
			v, n, err := unquoteKV(b)
			if err != nil {
				return Entry{}, fmt.Errorf("kv log message: %s: %w", key, err)
			}
			val, b = v, b[n:]
		} else if key == "message" {
			val, b = string(bytes.TrimRight(b, " \t")), nil
		} else {
			j := bytes.IndexAny(b, " \t")
			if j < 0 {
				j = len(b)
			}
			val, b = string(b[:j]), b[j:]
		}
		switch key {
		case "level":
			lvl, haveL = val, true
		case "src":
			src, haveS = val, true
		case "message":
			msg, haveM = val, true
		}
	}
	if !haveL || !haveS || !haveM {
		return Entry{}, errors.New("kv log message: level, src and message are required")
	}
	l, err := ParseLevel(lvl)
	if err != nil {
		return Entry{}, fmt.Errorf("kv log message: level: %w", err)
	}
	return Entry{Level: l, Source: src, Msg: msg}, nil
}

// unquoteKV reads a "..." value with \" and \\ escapes; it returns the value
// and the number of bytes consumed.
func unquoteKV(b []byte) (string, int, error) {
	var sb strings.Builder
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\'):
			sb.WriteByte(b[i+1])
			i++
		case c == '"':
			return sb.String(), i + 1, nil
		default:
			sb.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated quoted value")
}

// frameHeaderSize is sizeof(int32 code) + sizeof(int32 len).
const frameHeaderSize = 8

// frameHeader decodes a binary header; max bounds the declared length.
func frameHeader(h []byte, max int) (code int32, n int, err error) {
	code = int32(binary.LittleEndian.Uint32(h[0:4]))
	l := int32(binary.LittleEndian.Uint32(h[4:8]))
	if code != CodeLegacy && code != CodeCmd {
		return 0, 0, fmt.Errorf("%w: code %d: unknown", ErrBadFrame, code)
	}
	if l < 0 || int(l) > max {
		return 0, 0, fmt.Errorf("%w: length %d: out of range 0..%d", ErrBadFrame, l, max)
	}
	return code, int(l), nil
}

// AppendFrame appends the binary encoding of a frame to dst (little-endian,
// as the host order of every Pantavisor target).
func AppendFrame(dst []byte, code int32, buf []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(code))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(len(buf))))
	return append(dst, buf...)
}

// LegacyPayload builds the buffer of a LEGACY frame.
func LegacyPayload(level Level, platform, source, data string) []byte {
	b := strconv.AppendInt(nil, int64(level), 10)
	b = append(b, 0)
	b = append(b, platform...)
	b = append(b, 0)
	b = append(b, source...)
	b = append(b, 0)
	return append(b, data...)
}

// ParseLegacy parses the buffer of a LEGACY frame:
// level\0platform\0source\0data[\0].
func ParseLegacy(buf []byte) (Entry, error) {
	parts := bytes.SplitN(buf, []byte{0}, 4)
	if len(parts) < 4 {
		return Entry{}, fmt.Errorf("%w: legacy: want level\\0platform\\0source\\0data, got %d fields", ErrBadFrame, len(parts))
	}
	n, err := strconv.Atoi(string(parts[0]))
	if err != nil || n < int(Fatal) || n > int(All) {
		return Entry{}, fmt.Errorf("%w: legacy: level %q: want 0..5", ErrBadFrame, parts[0])
	}
	plat, src := string(parts[1]), string(parts[2])
	if plat == "" {
		plat = PlatformUnknown
	}
	if src == "" {
		src = defaultSource
	}
	data := bytes.TrimRight(parts[3], "\x00")
	return Entry{Level: Level(n), Platform: plat, Source: src, Msg: string(data), Raw: true}, nil
}

// Command is a decoded CMD frame.
type Command struct {
	Code int    `json:"code"`
	Data string `json:"data"`
}

// ParseCmd parses the buffer of a CMD frame: {"code":N,"data":"<rev>"}.
func ParseCmd(buf []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(bytes.TrimRight(buf, "\x00"), &c); err != nil {
		return Command{}, fmt.Errorf("%w: cmd: %w", ErrBadFrame, err)
	}
	if c.Code < CmdExit || c.Code > CmdTransition {
		return Command{}, fmt.Errorf("%w: cmd: code %d: want 1..4", ErrBadFrame, c.Code)
	}
	return c, nil
}

// CmdPayload builds the buffer of a CMD frame.
func CmdPayload(code int, data string) []byte {
	b, _ := json.Marshal(Command{Code: code, Data: data})
	return b
}

// WriteLegacy sends e as one LEGACY frame on a pv-ctrl-log connection.
func WriteLegacy(w io.Writer, e Entry) error {
	if _, err := w.Write(AppendFrame(nil, CodeLegacy, LegacyPayload(e.Level, e.Platform, e.Source, e.Msg))); err != nil {
		return fmt.Errorf("pv-ctrl-log send: %w", err)
	}
	return nil
}

// WriteCmd sends a CMD frame (CmdExit … CmdTransition) on a pv-ctrl-log
// connection; the server obeys it only from the pantavisor main PID.
func WriteCmd(w io.Writer, code int, data string) error {
	if _, err := w.Write(AppendFrame(nil, CodeCmd, CmdPayload(code, data))); err != nil {
		return fmt.Errorf("pv-ctrl-log send: %w", err)
	}
	return nil
}
