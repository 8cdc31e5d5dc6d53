package signature

import (
	"crypto"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"testing"
)

// bigState is a state of n platforms with 5 keys each, one signature per
// platform plus the BSP signature.
func bigState(b *testing.B, n int, key crypto.Signer) map[string]json.RawMessage {
	m := fixture()
	for i := range n {
		p := fmt.Sprintf("app%03d", i)
		for _, f := range []string{"root.squashfs", "lxc.container.conf", "mdev.json", "extra.bin"} {
			m[p+"/"+f] = json.RawMessage(`"` + sha2 + `"`)
		}
		m[p+"/src.json"] = json.RawMessage(`{"args": {"A": "b"}, "docker_digest": "x"}`)
	}
	inc, exc := BSPGlobs()
	signInto(b, m, "bsp", inc, exc, key)
	for i := range n {
		inc, exc := PartGlobs(fmt.Sprintf("app%03d", i))
		signInto(b, m, fmt.Sprintf("app%03d", i), inc, exc, key)
	}
	return m
}

func BenchmarkVerify(b *testing.B) {
	for _, tt := range []struct {
		name string
		key  crypto.Signer
	}{{"RS256", testRSA(b)}, {"ES256", testEC(b, elliptic.P256())}} {
		b.Run(tt.name, func(b *testing.B) {
			etc := trustDir(b, map[string][]byte{"pub.pem": pubPEM(b, tt.key.Public())})
			st := parse(b, bigState(b, 50, tt.key))
			v, err := New(Options{Mode: "lenient", EtcDir: etc})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := v.Verify(st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	for b.Loop() {
		Match("{bsp,app}/**/*.json", "app/a/b/c/d/run.json")
		Match("_config/app/**", "_config/app/etc/x.conf")
	}
}
