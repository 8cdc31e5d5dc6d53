package pantavisor

import (
	"os"

	"github.com/pantavisor/pantavisor-go/runtime/config"
	"github.com/pantavisor/pantavisor-go/runtime/network"
)

// containerBridge makes the default container bridge PV_NET_BRDEV with
// PV_NET_BRADDRESS4/PV_NET_BRMASK4, as upstream's early network init
// does. Only Pantavisor as PID 1 owns the host's network: in App Engine
// the host's interfaces are left alone. A failure is logged, not fatal
// (upstream warns and goes on).
func (d *Daemon) containerBridge() {
	if d.mode != Embedded || os.Getpid() != 1 {
		return
	}
	c := d.conf
	dev := c.Get(config.NetBrDev)
	if dev == "" {
		return
	}
	addr, err := network.MaskPrefix(c.Get(config.NetBrAddress4), c.Get(config.NetBrMask4))
	if err == nil {
		err = network.Bridge(dev, addr)
	}
	if err != nil {
		d.log.Warn("network: container bridge", "dev", dev, "err", err)
		return
	}
	d.log.Info("network: container bridge", "dev", dev, "address", addr)
}
