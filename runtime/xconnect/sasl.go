package xconnect

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
)

// maxSASLLine bounds one authentication line (dbus-daemon's own limit
// is 16 KiB for the whole exchange).
const maxSASLLine = 16 << 10

// errSASL ends a consumer's authentication the proxy will not pass on.
var errSASL = errors.New("dbus: bad authentication line")

// saslRewriter rewrites the consumer's side of D-Bus authentication
// (the SASL line protocol before BEGIN) so that the only identity the
// provider's bus ever reads is the link's: EXTERNAL with the hex of the
// role's uid in the provider, whatever the consumer claimed.
type saslRewriter struct {
	hexID string // hex of the decimal uid, as EXTERNAL carries it
}

func newSASLRewriter(uid uint32) saslRewriter {
	return saslRewriter{hexID: hex.EncodeToString([]byte(strconv.FormatUint(uint64(uid), 10)))}
}

// line handles one consumer line (without its CRLF). It returns the line
// to send to the provider (with CRLF, or ""), an answer to the consumer
// in the provider's stead (or ""), and whether this was BEGIN, after which
// the connection carries messages.
//
//   - AUTH EXTERNAL with any or no initial response: the response is the
//     link's identity (none stays none: the bus then asks with DATA);
//   - DATA, the answer to such a question: the link's identity;
//   - AUTH with another or no mechanism: REJECTED EXTERNAL, answered here
//     (ANONYMOUS or a cookie would be an identity the link did not grant);
//   - BEGIN, CANCEL, NEGOTIATE_UNIX_FD and ERROR pass unchanged;
//   - anything else, or a line that is not printable ASCII, is answered
//     ERROR here and not passed on.
func (s saslRewriter) line(l string) (toProvider, toConsumer string, begin bool) {
	for i := 0; i < len(l); i++ {
		if l[i] < 0x20 || l[i] > 0x7e {
			return "", "ERROR \"not printable ASCII\"\r\n", false
		}
	}
	cmd, arg, _ := strings.Cut(l, " ")
	switch cmd {
	case "AUTH":
		mech, resp, _ := strings.Cut(arg, " ")
		if mech != "EXTERNAL" {
			return "", "REJECTED EXTERNAL\r\n", false
		}
		if resp == "" {
			return "AUTH EXTERNAL\r\n", "", false
		}
		return "AUTH EXTERNAL " + s.hexID + "\r\n", "", false
	case "DATA":
		return "DATA " + s.hexID + "\r\n", "", false
	case "BEGIN":
		if arg != "" {
			break
		}
		return "BEGIN\r\n", "", true
	case "CANCEL", "NEGOTIATE_UNIX_FD":
		if arg != "" {
			break
		}
		return cmd + "\r\n", "", false
	case "ERROR":
		return l + "\r\n", "", false
	}
	return "", "ERROR \"unknown command\"\r\n", false
}
