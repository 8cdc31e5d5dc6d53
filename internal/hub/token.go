package hub

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Claims are the JWT claims of a Hub access token. Devices get
// type DEVICE and roles "device"; the owner is frozen at login time, as in
// pantahub-base, so a device logged in before its claim must log in again.
type Claims struct {
	ID      string `json:"id"`
	Nick    string `json:"nick"`
	Owner   string `json:"owner,omitempty"`
	PRN     string `json:"prn"`
	Roles   string `json:"roles"`
	Scopes  string `json:"scopes,omitempty"`
	Type    string `json:"type"`
	Exp     int64  `json:"exp"`
	OrigIat int64  `json:"orig_iat"`
}

// blobClaims sign a local-s3 URL: one object, one method, a deadline.
type blobClaims struct {
	SHA    string `json:"sha"`
	Method string `json:"method"`
	Exp    int64  `json:"exp"`
}

var b64 = base64.RawURLEncoding

var errToken = errors.New("invalid token")

func signRS256(key *rsa.PrivateKey, claims any) (string, error) {
	input, err := jwtInput("RS256", claims)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

func verifyRS256(pub *rsa.PublicKey, tok string, claims any) error {
	input, sig, err := splitJWT(tok, "RS256")
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(input))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return errToken
	}
	return decodePayload(input, claims)
}

func signHS256(key []byte, claims any) (string, error) {
	input, err := jwtInput("HS256", claims)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil)), nil
}

func verifyHS256(key []byte, tok string, claims any) error {
	input, sig, err := splitJWT(tok, "HS256")
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	if !hmac.Equal(m.Sum(nil), sig) {
		return errToken
	}
	return decodePayload(input, claims)
}

func jwtInput(alg string, claims any) (string, error) {
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	return b64.EncodeToString(h) + "." + b64.EncodeToString(p), nil
}

// splitJWT checks the header's alg before any signature work, so a token
// claiming "none" or another algorithm is refused outright.
func splitJWT(tok, alg string) (input string, sig []byte, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", nil, errToken
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return "", nil, errToken
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != alg {
		return "", nil, errToken
	}
	sig, err = b64.DecodeString(parts[2])
	if err != nil {
		return "", nil, errToken
	}
	return parts[0] + "." + parts[1], sig, nil
}

func decodePayload(input string, claims any) error {
	_, p, _ := strings.Cut(input, ".")
	pb, err := b64.DecodeString(p)
	if err != nil {
		return errToken
	}
	if json.Unmarshal(pb, claims) != nil {
		return errToken
	}
	return nil
}
