package bootloader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxMailboxWords bounds a vcmailbox message (pv-vcio takes 4 KiB).
const maxMailboxWords = 1024 - 3

// Vcmailbox is the vcmailbox applet, as the Raspberry Pi's tool of that
// name: `vcmailbox <word>...` sends one firmware property message made of
// the words (tag, value buffer size, request size, values; decimal or
// 0x hex) and prints the answer's words. /dev/vcio's module is loaded
// when the device is missing.
//
//	vcmailbox 0x00000001 4 0 0   # GET_FIRMWARE_REVISION
func Vcmailbox(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) == 0 || len(args) > maxMailboxWords {
		return errors.New("usage: vcmailbox <word>... (tag, buffer size, request size, values)")
	}
	msg := make([]uint32, 2, len(args)+3)
	msg[0] = uint32(4 * (len(args) + 3))
	for _, a := range args {
		v, err := strconv.ParseUint(a, 0, 32)
		if err != nil {
			return fmt.Errorf("vcmailbox: %q is not a 32-bit word", a)
		}
		msg = append(msg, uint32(v))
	}
	msg = append(msg, 0)
	err := VCMailbox{Load: LoadVCIO}.Property(msg)
	if msg[1]&0x80000000 != 0 {
		words := make([]string, len(msg))
		for i, w := range msg {
			words[i] = fmt.Sprintf("0x%08x", w)
		}
		fmt.Fprintln(stdout, strings.Join(words, " "))
	}
	return err
}
