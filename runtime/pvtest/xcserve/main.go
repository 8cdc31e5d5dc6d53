// Command xcserve is the xconnect fixtures' provider and client (built
// static, put into the xc-provider and xc-consumer containers):
//
//	xcserve serve <dir>                 echo on <dir>/raw.sock, HTTP on <dir>/api.sock
//	xcserve echo <socket> <message>     print what the echo server sends back
//	xcserve get <socket> <path> [H: v]… print the HTTP answer's body
//	xcserve fdserve <socket>            for each connection: read a passed descriptor,
//	                                    answer "read <its content>"
//	xcserve fdsend <socket> <message>   pass a file holding <message>, print the answer
//	xcserve dbus <socket> <name>        connect to a D-Bus bus (godbus, EXTERNAL
//	                                    claiming the process's uid), print the uid
//	                                    the bus gives the connection and the
//	                                    answer to RequestName(<name>)
//	xcserve drm <node>                  open a DRM node, print its device number
//	                                    and the driver's DRM_IOCTL_VERSION
//
// The HTTP server answers "client=<X-PV-Client> role=<X-PV-Role>" (every
// value of each, comma-separated) and logs each request's identity
// headers on stdout (the container's console).
package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "xcserve:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: xcserve serve <dir> | echo <socket> <msg> | get <socket> <path> [header]…")
	}
	switch args[0] {
	case "serve":
		return serve(args[1])
	case "echo":
		if len(args) != 3 {
			return fmt.Errorf("echo <socket> <message>")
		}
		return echo(args[1], args[2])
	case "fdserve":
		return fdServe(args[1])
	case "fdsend":
		if len(args) != 3 {
			return fmt.Errorf("fdsend <socket> <message>")
		}
		return fdSend(args[1], args[2])
	case "dbus":
		if len(args) != 3 {
			return fmt.Errorf("dbus <socket> <name>")
		}
		return busWhoami(args[1], args[2])
	case "drm":
		return drmVersion(args[1])
	case "get":
		if len(args) < 3 {
			return fmt.Errorf("get <socket> <path> [header]…")
		}
		return get(args[1], args[2], args[3:])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := listen(filepath.Join(dir, "raw.sock"))
	if err != nil {
		return err
	}
	api, err := listen(filepath.Join(dir, "api.sock"))
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := raw.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	fmt.Println("xcserve: serving", dir)
	return http.Serve(api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := fmt.Sprintf("client=%s role=%s", strings.Join(r.Header.Values("X-PV-Client"), ","), strings.Join(r.Header.Values("X-PV-Role"), ","))
		fmt.Printf("xcserve: %s %s %s\n", r.Method, r.URL.Path, id)
		fmt.Fprintln(w, id)
	}))
}

func listen(p string) (net.Listener, error) {
	_ = os.Remove(p)
	return net.Listen("unix", p)
}

func echo(sock, msg string) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

func get(sock, path string, headers []string) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

func busWhoami(sock, name string) error {
	nc, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	cc := &claimUID{Conn: nc}
	c, err := dbus.NewConn(cc)
	if err != nil {
		nc.Close()
		return err
	}
	defer c.Close()
	if err := c.Auth(nil); err != nil {
		return err
	}
	if !cc.claimed {
		return errors.New("dbus: godbus did not send \"AUTH EXTERNAL\": no uid claimed")
	}
	if err := c.Hello(); err != nil {
		return err
	}
	bus := c.BusObject()
	var uid uint32
	if err := bus.Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, c.Names()[0]).Store(&uid); err != nil {
		return err
	}
	own := ""
	var reply uint32
	if err := bus.Call("org.freedesktop.DBus.RequestName", 0, name, uint32(0)).Store(&reply); err != nil {
		var e dbus.Error
		if !errors.As(err, &e) {
			return err
		}
		own = e.Name
	} else {
		own = fmt.Sprint(reply)
	}
	fmt.Printf("uid=%v own=%s\n", uid, own)
	return nil
}

// claimUID puts the process's uid into godbus's EXTERNAL authentication,
// as libdbus does. godbus sends "AUTH EXTERNAL" alone and lets the bus
// take the socket's credentials, which through pv-xconnect are the
// role's already; a claim (root's, in the consumer) is what shows the
// bus sees the role's uid because the proxy rewrote the claim.
type claimUID struct {
	net.Conn
	claimed bool // written in Auth, before godbus starts its reader
}

func (c *claimUID) Write(b []byte) (int, error) {
	if c.claimed || string(b) != "AUTH EXTERNAL\r\n" {
		return c.Conn.Write(b)
	}
	c.claimed = true
	id := hex.EncodeToString([]byte(strconv.Itoa(os.Getuid())))
	if _, err := io.WriteString(c.Conn, "AUTH EXTERNAL "+id+"\r\n"); err != nil {
		return 0, err
	}
	return len(b), nil
}

// fdServe is a stand-in for a Wayland compositor: clients pass it file
// descriptors (shm buffers) with their bytes.
func fdServe(sock string) error {
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		return err
	}
	ln, err := listen(sock)
	if err != nil {
		return err
	}
	fmt.Println("xcserve: fd server on", sock)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
			_, oobn, _, _, err := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			if len(msgs) != 1 {
				fmt.Fprintln(c, "no descriptor")
				return
			}
			fds, err := unix.ParseUnixRights(&msgs[0])
			if err != nil || len(fds) != 1 {
				fmt.Fprintln(c, "no descriptor")
				return
			}
			f := os.NewFile(uintptr(fds[0]), "passed")
			defer f.Close()
			b, _ := io.ReadAll(f)
			fmt.Fprintf(c, "read %s\n", b)
		}()
	}
}

func fdSend(sock, msg string) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	f, err := os.CreateTemp("", "xcserve-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.WriteString(msg); err != nil {
		return err
	}
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	if _, _, err := c.(*net.UnixConn).WriteMsgUnix([]byte("buf"), unix.UnixRights(int(f.Fd())), nil); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	fmt.Print(string(b))
	return nil
}
