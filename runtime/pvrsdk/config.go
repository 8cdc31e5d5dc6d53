package pvrsdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// ConfigPath is where the container reads its configuration; the state
// key _config/pvr-sdk/etc/pvr-sdk/config.json overlays it.
const ConfigPath = "/etc/pvr-sdk/config.json"

// Defaults: the device's loopback only. The seeds call opening the port to
// the LAN insecure, a development step made with one config change.
const (
	DefaultListen = "127.0.0.1"
	DefaultPort   = 12368
)

// maxConfig bounds the configuration file.
const maxConfig = 64 << 10

// Config is pvr-sdk's configuration, upstream's shape:
//
//	{"httpd":{"listen":"0.0.0.0","port":"12368"}}
//
// The port may be a string (as the seeds write it) or a number.
type Config struct {
	Listen string
	Port   int
}

// DefaultConfig returns the built-in configuration.
func DefaultConfig() Config { return Config{Listen: DefaultListen, Port: DefaultPort} }

// Addr is the listen address for net.Listen.
func (c Config) Addr() string { return net.JoinHostPort(c.Listen, strconv.Itoa(c.Port)) }

// ReadConfig reads path; a missing file gives the defaults.
func ReadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses a config.json. Keys other than httpd are kept for
// upstream's other tools and ignored; missing httpd fields take the
// defaults; a bad listen address or port is an error.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	if len(data) > maxConfig {
		return c, fmt.Errorf("larger than %d bytes", maxConfig)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	var doc struct {
		HTTPD *struct {
			Listen *string          `json:"listen"`
			Port   *json.RawMessage `json:"port"`
		} `json:"httpd"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return c, err
	}
	if doc.HTTPD == nil {
		return c, nil
	}
	if l := doc.HTTPD.Listen; l != nil && *l != "" {
		if net.ParseIP(*l) == nil && *l != "localhost" {
			return c, fmt.Errorf("httpd.listen %q: not an IP address", *l)
		}
		c.Listen = *l
	}
	if p := doc.HTTPD.Port; p != nil {
		var s string
		if err := json.Unmarshal(*p, &s); err != nil {
			s = strings.TrimSpace(string(*p))
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("httpd.port %s: want 1-65535", *p)
		}
		c.Port = n
	}
	return c, nil
}
