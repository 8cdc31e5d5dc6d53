//go:build ignore

// relay forwards TCP connections from -listen to -to: the suite kills it
// to take the Hub off the network (connections refused) while the Hub
// keeps its state, and starts it again to bring the Hub back.
//
// With -cut-when FILE the relay takes itself off the network (closes every
// connection and exits) as soon as FILE exists, and forwards no
// connection accepted after that: a device that reboots right after
// writing FILE can never reach the Hub through it, however late the
// script looks.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "", "address to accept on")
	to := flag.String("to", "", "address to forward to")
	cutWhen := flag.String("cut-when", "", "exit once this file exists")
	flag.Parse()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	cut := func() bool {
		if *cutWhen == "" {
			return false
		}
		_, err := os.Stat(*cutWhen)
		return err == nil
	}
	exit := func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		l.Close()
		os.Exit(0)
	}
	if *cutWhen != "" {
		go func() {
			for !cut() {
				time.Sleep(20 * time.Millisecond)
			}
			exit()
		}()
	}
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		if cut() {
			exit()
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		go func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
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
