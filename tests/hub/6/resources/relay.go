//go:build ignore

// relay forwards TCP connections from -listen to -to: the suite kills it
// to take the Hub off the network (connections refused) while the Hub
// keeps its state, and starts it again to bring the Hub back.
package main

import (
	"flag"
	"io"
	"log"
	"net"
)

func main() {
	listen := flag.String("listen", "", "address to accept on")
	to := flag.String("to", "", "address to forward to")
	flag.Parse()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", *to)
			if err != nil {
				return
			}
			defer u.Close()
			go io.Copy(u, c)
			io.Copy(c, u)
		}()
	}
}
