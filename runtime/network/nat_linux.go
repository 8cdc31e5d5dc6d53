package network

import (
	"errors"
	"net"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// masquerade replaces the NAT table of bridge with one postrouting chain
// holding `ip saddr <subnet> oifname != "<bridge>" masquerade`.
func masquerade(bridge string, subnet netip.Prefix) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	// add, delete, add: one batch that works whether the table exists or
	// not, and never leaves the pool without its rule in between
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: NATTable(bridge)}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		// ip saddr & mask == subnet
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: net.CIDRMask(subnet.Bits(), 32), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: subnet.Addr().AsSlice()},
		// oifname != bridge (names are NUL-padded to IFNAMSIZ)
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(bridge)},
		&expr.Masq{},
	}})
	return c.Flush()
}

// unmasquerade deletes the NAT table of bridge if it exists.
func unmasquerade(bridge string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: NATTable(bridge)}
	c.AddTable(t)
	c.DelTable(t)
	err = c.Flush()
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}
