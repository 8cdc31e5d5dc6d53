package ca

import (
	"os"
	"testing"

	"github.com/pantavisor/pantavisor-go/mkimage/sign"
)

// TestEmbedded: the embedded files are ca/developer's and the signer is
// the CA's.
func TestEmbedded(t *testing.T) {
	for name, got := range map[string][]byte{"developer/ca.crt": DeveloperCert, "developer/signer.key": DeveloperSignerKey, "developer/signer.crt": DeveloperSignerCert} {
		want, err := os.ReadFile(name)
		if err != nil || string(got) != string(want) {
			t.Errorf("embedded %s differs from the file (%v)", name, err)
		}
	}
	if err := sign.CheckCertPEM(DeveloperCert); err != nil {
		t.Errorf("CheckCertPEM(DeveloperCert) = %v", err)
	}
	if _, err := sign.Load(DeveloperSignerKey, DeveloperSignerCert); err != nil {
		t.Errorf("sign.Load(developer signer) = %v", err)
	}
}
