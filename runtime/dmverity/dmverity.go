// Package dmverity is the dm-verity on-disk format Pantavisor volumes use:
// the hash device veritysetup(8) writes (a superblock, then the hash tree),
// the "_dm/<volume>.json" manifest pvr dm-convert adds to a container, and
// the device-mapper "verity" table that ties them together.
//
// The superblock is cryptsetup's (format version 1, 512 bytes, little
// endian); the kernel never reads it, it only gets the table, so every
// number the table carries is checked here first. The root hash must come
// from somewhere trusted (the signed state), never from the hash device.
//
//	root, err := dmverity.Format("root.squashfs", "root.squashfs.hash", nil)
//	root, err := dmverity.FormatSeeded("root.squashfs", "root.squashfs.hash", digest) // reproducible
//	sb, err := dmverity.ReadSuperblock("root.squashfs.hash")
//	params := sb.Table("7:1", "7:2", root)
package dmverity

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// ErrFormat is wrapped by every error about a malformed superblock,
// manifest or data file.
var ErrFormat = errors.New("bad dm-verity format")

// Layout of cryptsetup's verity superblock (version 1).
const (
	SuperblockSize = 512
	signature      = "verity\x00\x00"
	sbVersion      = 1
	// HashType 1 is the "normal" format (salt first, digests padded to a
	// power of two); 0 is Chrome OS's, which we do not produce or accept.
	HashType    = 1
	maxSaltSize = 256
	algLen      = 32

	offVersion   = 8
	offHashType  = 12
	offUUID      = 16
	offAlgorithm = 32
	offDataBS    = 64
	offHashBS    = 68
	offDataBlks  = 72
	offSaltSize  = 80
	offSalt      = 88
)

// BlockSize is what Format uses for data and hash blocks (veritysetup's
// default, and the page size the kernel wants at most on most machines).
const BlockSize = 4096

// digestSizes are the algorithms accepted in a superblock.
var digestSizes = map[string]int{"sha256": 32, "sha512": 64, "sha1": 20}

// hashes make the digests of digestSizes' algorithms.
var hashes = map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New, "sha1": sha1.New}

// Superblock is the parsed header of a hash device.
type Superblock struct {
	UUID          [16]byte
	Algorithm     string
	DataBlockSize uint32
	HashBlockSize uint32
	DataBlocks    uint64
	Salt          []byte
}

// DigestSize is the size of a digest of sb's algorithm.
func (sb *Superblock) DigestSize() int { return digestSizes[sb.Algorithm] }

// DataSize is the number of bytes of the data device the tree covers.
func (sb *Superblock) DataSize() uint64 { return sb.DataBlocks * uint64(sb.DataBlockSize) }

// HashStart is the first block of the hash tree on the hash device, in
// hash blocks: the superblock takes the first one.
func (sb *Superblock) HashStart() uint64 { return 1 }

// Table returns the parameters of a device-mapper "verity" target over
// dataDev and hashDev ("major:minor" or paths) with the trusted root hash
// (see the kernel's admin-guide/device-mapper/verity.rst).
func (sb *Superblock) Table(dataDev, hashDev string, root []byte) string {
	salt := "-"
	if len(sb.Salt) > 0 {
		salt = hex.EncodeToString(sb.Salt)
	}
	return fmt.Sprintf("%d %s %s %d %d %d %d %s %s %s", HashType, dataDev, hashDev,
		sb.DataBlockSize, sb.HashBlockSize, sb.DataBlocks, sb.HashStart(), sb.Algorithm, hex.EncodeToString(root), salt)
}

// ParseSuperblock parses and checks the first SuperblockSize bytes of b.
func ParseSuperblock(b []byte) (*Superblock, error) {
	if len(b) < SuperblockSize {
		return nil, fmt.Errorf("%w: superblock of %d bytes, want %d", ErrFormat, len(b), SuperblockSize)
	}
	if string(b[:8]) != signature {
		return nil, fmt.Errorf("%w: no verity signature (%q)", ErrFormat, b[:8])
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[offVersion:]); v != sbVersion {
		return nil, fmt.Errorf("%w: superblock version %d, want %d", ErrFormat, v, sbVersion)
	}
	if t := le.Uint32(b[offHashType:]); t != HashType {
		return nil, fmt.Errorf("%w: hash type %d, want %d", ErrFormat, t, HashType)
	}
	sb := &Superblock{
		DataBlockSize: le.Uint32(b[offDataBS:]),
		HashBlockSize: le.Uint32(b[offHashBS:]),
		DataBlocks:    le.Uint64(b[offDataBlks:]),
	}
	copy(sb.UUID[:], b[offUUID:offUUID+16])
	alg := b[offAlgorithm : offAlgorithm+algLen]
	if i := bytes.IndexByte(alg, 0); i >= 0 {
		alg = alg[:i]
	}
	sb.Algorithm = string(alg)
	if sb.DigestSize() == 0 {
		return nil, fmt.Errorf("%w: hash algorithm %q", ErrFormat, sb.Algorithm)
	}
	for _, bs := range []uint32{sb.DataBlockSize, sb.HashBlockSize} {
		// The kernel takes 512 bytes up to its page size; 64 KiB pages
		// are the largest Linux has.
		if bs < 512 || bs > 65536 || bs&(bs-1) != 0 {
			return nil, fmt.Errorf("%w: block size %d", ErrFormat, bs)
		}
	}
	if int(sb.HashBlockSize) < 2*sb.DigestSize() {
		return nil, fmt.Errorf("%w: hash block size %d holds fewer than two %s digests", ErrFormat, sb.HashBlockSize, sb.Algorithm)
	}
	if sb.DataBlocks == 0 || sb.DataBlocks > (1<<63)/uint64(sb.DataBlockSize) {
		return nil, fmt.Errorf("%w: %d data blocks", ErrFormat, sb.DataBlocks)
	}
	n := int(le.Uint16(b[offSaltSize:]))
	if n > maxSaltSize {
		return nil, fmt.Errorf("%w: salt of %d bytes", ErrFormat, n)
	}
	sb.Salt = append([]byte(nil), b[offSalt:offSalt+n]...)
	return sb, nil
}

// ReadSuperblock reads the superblock at the start of the hash device file.
func ReadSuperblock(file string) (*Superblock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, SuperblockSize)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", file, ErrFormat, err)
	}
	sb, err := ParseSuperblock(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return sb, nil
}

// marshal lays sb out as a superblock.
func (sb *Superblock) marshal() []byte {
	b := make([]byte, SuperblockSize)
	le := binary.LittleEndian
	copy(b, signature)
	le.PutUint32(b[offVersion:], sbVersion)
	le.PutUint32(b[offHashType:], HashType)
	copy(b[offUUID:], sb.UUID[:])
	copy(b[offAlgorithm:offAlgorithm+algLen-1], sb.Algorithm)
	le.PutUint32(b[offDataBS:], sb.DataBlockSize)
	le.PutUint32(b[offHashBS:], sb.HashBlockSize)
	le.PutUint64(b[offDataBlks:], sb.DataBlocks)
	le.PutUint16(b[offSaltSize:], uint16(len(sb.Salt)))
	copy(b[offSalt:], sb.Salt)
	return b
}

// Format writes the hash device hashFile (superblock and hash tree, sha256,
// BlockSize blocks, the layout of veritysetup format) for the data file and
// returns the root hash. A nil salt is 32 random bytes; the superblock's
// UUID is random. The data file must be a whole number of blocks: a tail
// the tree does not cover would be read unverified.
func Format(dataFile, hashFile string, salt []byte) ([]byte, error) {
	if salt == nil {
		salt = make([]byte, 32)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
	}
	var uuid [16]byte
	if _, err := rand.Read(uuid[:]); err != nil {
		return nil, err
	}
	uuid[6] = uuid[6]&0x0f | 0x40 // RFC 4122 version 4
	uuid[8] = uuid[8]&0x3f | 0x80
	return format(dataFile, hashFile, salt, uuid)
}

// FormatSeeded is Format with the salt and UUID derived from seed (the
// data file's digest, say) rather than drawn at random: the hash device
// is then a function of the data and the seed alone, as an image builder
// whose outputs are reproducible byte for byte needs. The salt is public
// (it is in the superblock and the table); it only has to differ between
// data files, which a seed taken from the data gives.
func FormatSeeded(dataFile, hashFile string, seed []byte) ([]byte, error) {
	salt := sha256.Sum256(append([]byte("pantavisor dm-verity salt\x00"), seed...))
	u := sha256.Sum256(append([]byte("pantavisor dm-verity uuid\x00"), seed...))
	var uuid [16]byte
	copy(uuid[:], u[:])
	uuid[6] = uuid[6]&0x0f | 0x80 // RFC 9562 version 8 (custom)
	uuid[8] = uuid[8]&0x3f | 0x80
	return format(dataFile, hashFile, salt[:], uuid)
}

func format(dataFile, hashFile string, salt []byte, uuid [16]byte) ([]byte, error) {
	if len(salt) > maxSaltSize {
		return nil, fmt.Errorf("%w: salt of %d bytes", ErrFormat, len(salt))
	}
	data, err := os.Open(dataFile)
	if err != nil {
		return nil, err
	}
	defer data.Close()
	fi, err := data.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() == 0 || fi.Size()%BlockSize != 0 {
		return nil, fmt.Errorf("%s: %w: size %d is not a positive multiple of %d", dataFile, ErrFormat, fi.Size(), BlockSize)
	}
	sb := &Superblock{Algorithm: "sha256", DataBlockSize: BlockSize, HashBlockSize: BlockSize,
		DataBlocks: uint64(fi.Size() / BlockSize), Salt: salt, UUID: uuid}

	levels, root, err := sb.tree(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dataFile, err)
	}
	out, err := os.OpenFile(hashFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	head := make([]byte, BlockSize)
	copy(head, sb.marshal())
	_, err = out.Write(head)
	// The top level first, as the kernel looks them up.
	for i := len(levels) - 1; i >= 0 && err == nil; i-- {
		_, err = out.Write(levels[i])
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(hashFile)
		return nil, fmt.Errorf("write %s: %w", hashFile, err)
	}
	return root, nil
}

// tree hashes sb.DataBlocks blocks of data into the levels of the hash
// tree, bottom first, each zero padded to whole hash blocks, and returns
// them with the root hash. levels[0] holds the digests of the data blocks,
// levels[i+1] those of the blocks of levels[i], until one block is left;
// one data block has no levels: its digest is the root.
func (sb *Superblock) tree(data io.Reader) (levels [][]byte, root []byte, err error) {
	newHash := hashes[sb.Algorithm]
	hashBlock := func(b []byte) []byte {
		h := newHash()
		h.Write(sb.Salt)
		h.Write(b)
		return h.Sum(nil)
	}
	ds, hs := int(sb.DataBlockSize), int(sb.HashBlockSize)
	// veritysetup pads each digest to a power of two (HashType 1).
	slot := 1
	for slot < sb.DigestSize() {
		slot <<= 1
	}
	digest := func(dst, b []byte) []byte {
		d := hashBlock(b)
		return append(append(dst, d...), make([]byte, slot-len(d))...)
	}
	cur := make([]byte, 0, sb.DataBlocks*uint64(slot))
	buf := make([]byte, ds)
	for i := uint64(0); i < sb.DataBlocks; i++ {
		if _, err := io.ReadFull(data, buf); err != nil {
			return nil, nil, err
		}
		cur = digest(cur, buf)
	}
	if sb.DataBlocks == 1 {
		return nil, hashBlock(buf), nil
	}
	for {
		padded := make([]byte, (len(cur)+hs-1)/hs*hs)
		copy(padded, cur)
		levels = append(levels, padded)
		if len(padded) == hs {
			return levels, hashBlock(padded), nil
		}
		next := make([]byte, 0, len(padded)/hs*slot)
		for off := 0; off < len(padded); off += hs {
			next = digest(next, padded[off:off+hs])
		}
		cur = next
	}
}

// ErrMismatch is wrapped by Verify's errors about a hash device that does
// not fit its data or the trusted root hash.
var ErrMismatch = errors.New("dm-verity hash mismatch")

// Verify checks, as veritysetup verify does, that the hash device
// hashFile holds the hash tree of the data file and that its root is the
// trusted root: what the kernel's verity target would find at every read,
// checked at once (tests, and a builder checking its own output).
func Verify(dataFile, hashFile string, root []byte) error {
	sb, err := ReadSuperblock(hashFile)
	if err != nil {
		return err
	}
	data, err := os.Open(dataFile)
	if err != nil {
		return err
	}
	defer data.Close()
	levels, got, err := sb.tree(data)
	if err != nil {
		return fmt.Errorf("read %s: %w", dataFile, err)
	}
	if !bytes.Equal(got, root) {
		return fmt.Errorf("%w: %s hashes to root %x, want %x", ErrMismatch, dataFile, got, root)
	}
	hdev, err := os.ReadFile(hashFile)
	if err != nil {
		return err
	}
	off := int(sb.HashStart()) * int(sb.HashBlockSize)
	for i := len(levels) - 1; i >= 0; i-- {
		if len(hdev) < off+len(levels[i]) || !bytes.Equal(hdev[off:off+len(levels[i])], levels[i]) {
			return fmt.Errorf("%w: %s: level %d of the tree does not hash %s", ErrMismatch, hashFile, i, dataFile)
		}
		off += len(levels[i])
	}
	return nil
}

// Manifest is a container's "_dm/<volume>.json" (pvr dm-convert).
type Manifest struct {
	Type       string `json:"type"`
	DataDevice string `json:"data_device"`
	HashDevice string `json:"hash_device"`
	RootHash   string `json:"root_hash"`
}

// ManifestType is the only handler type there is.
const ManifestType = "dm-verity"

// ParseManifest decodes and checks a manifest: its type, plain file names
// for both devices (they live next to the volume, in the container's
// directory) and a root hash in hex.
func ParseManifest(raw []byte) (Manifest, error) {
	var m Manifest
	if err := jsonStrict(raw, &m); err != nil {
		return m, fmt.Errorf("%w: manifest: %w", ErrFormat, err)
	}
	if m.Type != ManifestType {
		return m, fmt.Errorf("%w: manifest type %q, want %q", ErrFormat, m.Type, ManifestType)
	}
	for _, f := range []struct{ field, name string }{{"data_device", m.DataDevice}, {"hash_device", m.HashDevice}} {
		if err := PlainName(f.name); err != nil {
			return m, fmt.Errorf("manifest %s: %w", f.field, err)
		}
	}
	if m.DataDevice == m.HashDevice {
		return m, fmt.Errorf("%w: manifest: data and hash device are both %q", ErrFormat, m.DataDevice)
	}
	if _, err := m.Root(); err != nil {
		return m, err
	}
	return m, nil
}

// Root returns the decoded root hash: hex of one of the accepted digest sizes.
func (m Manifest) Root() ([]byte, error) {
	root, err := hex.DecodeString(m.RootHash)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest root_hash: %w", ErrFormat, err)
	}
	for _, n := range digestSizes {
		if len(root) == n {
			return root, nil
		}
	}
	return nil, fmt.Errorf("%w: manifest root_hash of %d bytes", ErrFormat, len(root))
}

// PlainName checks that name is a file name alone: no directory, no "..",
// nothing the kernel or a shell would read otherwise.
func PlainName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("%w: %q is not a plain file name", ErrFormat, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q is not a plain file name", ErrFormat, name)
		}
	}
	return nil
}
