//go:build unix

package queue

import "syscall"

func volumeSize(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks) * int64(st.Bsize), nil //nolint:unconvert,gosec // Bsize is uint32 on darwin; block counts are far below 2^63
}
