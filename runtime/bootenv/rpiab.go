package bootenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Raspberry Pi tryboot A/B files (upstream RPIAB.md): autoboot.txt on the
// boot selector partition names the boot partition of a normal boot
// ([all]) and of a try boot ([tryboot]); pv_rev.txt on a boot partition
// lists the revisions its image may boot.
const (
	AutobootFile = "autoboot.txt"
	RevListFile  = "pv_rev.txt"
	// RevListMax is the longest pv_rev.txt: stacked non-reboot updates
	// append to the list until it would not fit, then force a reboot.
	RevListMax = 511
)

// ErrBadAutoboot means autoboot.txt does not name two distinct boot
// partitions.
var ErrBadAutoboot = errors.New("bad " + AutobootFile)

// ParseAutoboot returns boot_partition of the [all] and [tryboot]
// sections.
func ParseAutoboot(b []byte) (boot, try int, err error) {
	section := "all"
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "boot_partition" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 2 {
			return 0, 0, fmt.Errorf("%w: boot_partition %q", ErrBadAutoboot, v)
		}
		switch section {
		case "all":
			boot = n
		case "tryboot":
			try = n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrBadAutoboot, err)
	}
	if boot == 0 || try == 0 || boot == try {
		return 0, 0, fmt.Errorf("%w: need distinct boot_partition in [all] and [tryboot]", ErrBadAutoboot)
	}
	return boot, try, nil
}

// Autoboot writes autoboot.txt: tryboot A/B on, boot from partition boot,
// try boots from partition try.
func Autoboot(boot, try int) []byte {
	return fmt.Appendf(nil, "[all]\ntryboot_a_b=1\nboot_partition=%d\n[tryboot]\nboot_partition=%d\n", boot, try)
}

// ParseRevList reads pv_rev.txt: revisions separated by commas; an empty
// or blank file lists none (a factory image).
func ParseRevList(b []byte) []string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// RevList writes pv_rev.txt; ok is false when it would exceed RevListMax.
func RevList(revs []string) (b []byte, ok bool) {
	s := strings.Join(revs, ",")
	return []byte(s), len(s) <= RevListMax
}
