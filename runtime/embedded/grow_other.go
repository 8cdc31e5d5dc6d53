//go:build !linux

package embedded

import "os"

func resizePartition(disk *os.File, pno int, start, length int64) error { return ErrUnsupported }

func resizeExt4(dir string, blocks uint64) error { return ErrUnsupported }
