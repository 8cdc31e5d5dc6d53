// Package dbuswire is a minimal D-Bus client for tests: EXTERNAL
// authentication as the calling process's uid, then method calls with
// string and uint32 arguments whose reply's first value (a string or a
// uint32) is returned. It is what the xconnect tests use to reach a real
// dbus-daemon through pv-xconnect without a D-Bus library in the
// consumer.
//
//	c, err := dbuswire.Dial("/run/dbus/system_bus_socket")
//	uid, err := c.Call(dbuswire.Bus, dbuswire.BusPath, dbuswire.Bus, "GetConnectionUnixUser", c.Name)
package dbuswire

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// The bus itself.
const (
	Bus     = "org.freedesktop.DBus"
	BusPath = "/org/freedesktop/DBus"
)

// Error is an ERROR reply.
type Error struct{ Name, Message string }

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// Conn is one authenticated bus connection.
type Conn struct {
	c      net.Conn
	r      *bufio.Reader
	serial uint32
	// Name is the unique name Hello gave.
	Name string
}

// Dial connects to the bus at path, authenticates (EXTERNAL, the
// process's uid) and says Hello. Every step has a 10 s deadline.
func Dial(path string) (*Conn, error) {
	nc, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &Conn{c: nc, r: bufio.NewReader(nc)}
	id := hex.EncodeToString([]byte(strconv.Itoa(os.Getuid())))
	if _, err := io.WriteString(nc, "\x00AUTH EXTERNAL "+id+"\r\n"); err != nil {
		nc.Close()
		return nil, err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		nc.Close()
		return nil, err
	}
	if !strings.HasPrefix(line, "OK ") {
		nc.Close()
		return nil, fmt.Errorf("dbus: authentication: %q", strings.TrimSpace(line))
	}
	if _, err := io.WriteString(nc, "BEGIN\r\n"); err != nil {
		nc.Close()
		return nil, err
	}
	v, err := c.Call(Bus, BusPath, Bus, "Hello")
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.Name, _ = v.(string)
	return c, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Call calls a method with string and uint32 args and returns the first
// value of the reply (nil when it has none), or the *Error it got.
func (c *Conn) Call(dest, path, iface, member string, args ...any) (any, error) {
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	c.serial++
	msg, err := call(c.serial, dest, path, iface, member, args)
	if err != nil {
		return nil, err
	}
	if _, err := c.c.Write(msg); err != nil {
		return nil, err
	}
	for {
		m, err := read(c.r)
		if err != nil {
			return nil, err
		}
		if (m.typ != 2 && m.typ != 3) || m.replySerial != c.serial {
			continue // signals (NameAcquired), others' replies
		}
		if m.typ == 3 {
			msg, _ := m.first.(string)
			return nil, &Error{Name: m.errName, Message: msg}
		}
		return m.first, nil
	}
}

// enc marshals little-endian, aligned from the message start.
type enc struct{ b []byte }

func (e *enc) align(n int) {
	for len(e.b)%n != 0 {
		e.b = append(e.b, 0)
	}
}
func (e *enc) u32(v uint32) { e.align(4); e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) str(s string) { e.u32(uint32(len(s))); e.b = append(append(e.b, s...), 0) }
func (e *enc) sig(s string) { e.b = append(append(append(e.b, byte(len(s))), s...), 0) }

// call builds a METHOD_CALL.
func call(serial uint32, dest, path, iface, member string, args []any) ([]byte, error) {
	var body enc
	sig := ""
	for _, a := range args {
		switch v := a.(type) {
		case string:
			sig += "s"
			body.str(v)
		case uint32:
			sig += "u"
			body.u32(v)
		default:
			return nil, fmt.Errorf("dbus: argument type %T", a)
		}
	}
	h := enc{b: []byte{'l', 1, 0, 1}}
	h.u32(uint32(len(body.b)))
	h.u32(serial)
	var f enc
	f.b = make([]byte, 16) // fields start at 16: keep alignment right
	field := func(code byte, typ, v string) {
		f.align(8)
		f.b = append(f.b, code)
		f.sig(typ)
		if typ == "g" {
			f.sig(v)
		} else {
			f.str(v)
		}
	}
	field(1, "o", path)
	if iface != "" {
		field(2, "s", iface)
	}
	field(3, "s", member)
	field(6, "s", dest)
	if sig != "" {
		field(8, "g", sig)
	}
	fields := f.b[16:]
	h.u32(uint32(len(fields)))
	h.b = append(h.b, fields...)
	h.align(8)
	return append(h.b, body.b...), nil
}

// message is what read keeps of one.
type message struct {
	typ         byte
	replySerial uint32
	errName     string
	first       any
}

// read reads one message.
func read(r *bufio.Reader) (message, error) {
	var m message
	fixed := make([]byte, 16)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return m, err
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch fixed[0] {
	case 'l':
	case 'B':
		bo = binary.BigEndian
	default:
		return m, errors.New("dbus: bad endianness")
	}
	m.typ = fixed[1]
	bodyLen, fieldsLen := bo.Uint32(fixed[4:]), bo.Uint32(fixed[12:])
	if bodyLen > 1<<20 || fieldsLen > 1<<16 {
		return m, errors.New("dbus: message too big")
	}
	hdrEnd := 16 + int(fieldsLen)
	total := (hdrEnd+7)&^7 + int(bodyLen)
	b := make([]byte, total)
	copy(b, fixed)
	if _, err := io.ReadFull(r, b[16:]); err != nil {
		return m, err
	}
	d := dec{b: b, bo: bo, off: 16}
	sig := ""
	for d.off < hdrEnd && d.err == nil {
		d.align(8)
		code := d.byte1()
		typ := d.sig()
		v := d.value(typ)
		switch code {
		case 4:
			m.errName, _ = v.(string)
		case 5:
			m.replySerial, _ = v.(uint32)
		case 8:
			sig, _ = v.(string)
		}
	}
	d.off = (hdrEnd + 7) &^ 7
	if sig != "" && d.err == nil {
		m.first = d.value(sig[:1])
	}
	return m, d.err
}

// dec unmarshals what read needs: u, s, o, g and skips nothing else.
type dec struct {
	b   []byte
	bo  binary.ByteOrder
	off int
	err error
}

func (d *dec) need(n int) bool {
	if d.err == nil && d.off+n > len(d.b) {
		d.err = io.ErrUnexpectedEOF
	}
	return d.err == nil
}
func (d *dec) align(n int) { d.off = (d.off + n - 1) &^ (n - 1) }
func (d *dec) byte1() byte {
	if !d.need(1) {
		return 0
	}
	d.off++
	return d.b[d.off-1]
}
func (d *dec) u32() uint32 {
	d.align(4)
	if !d.need(4) {
		return 0
	}
	d.off += 4
	return d.bo.Uint32(d.b[d.off-4:])
}
func (d *dec) sig() string {
	n := int(d.byte1())
	if !d.need(n + 1) {
		return ""
	}
	s := string(d.b[d.off : d.off+n])
	d.off += n + 1
	return s
}
func (d *dec) value(typ string) any {
	switch typ {
	case "u":
		return d.u32()
	case "s", "o":
		n := int(d.u32())
		if !d.need(n + 1) {
			return nil
		}
		s := string(d.b[d.off : d.off+n])
		d.off += n + 1
		return s
	case "g":
		return d.sig()
	}
	if d.err == nil {
		d.err = fmt.Errorf("dbus: value type %q not supported", typ)
	}
	return nil
}
