//go:build !unix

package queue

import "errors"

func volumeSize(string) (int64, error) {
	return 0, errors.New("volume size unknown on this platform: set --max-store-bytes")
}
