package queue

import "fmt"

// Storage sizing defaults; see docs/operations.md ("Storage bounds").
const (
	// VolumeShare is the share of the data volume (percent) the embedded
	// store may use when --max-store-bytes is not set.
	VolumeShare = 75
	// StreamShare is the share of the store (percent) the streams and
	// buckets reserve together, leaving room for JetStream's own files.
	StreamShare = 95
	// DefaultExternalMaxBytes is the storage bound on an external NATS
	// cluster when --storage-max-bytes is not set.
	DefaultExternalMaxBytes = 10 << 30
)

// EmbeddedStore returns the embedded server's store bound: maxStore when
// set, else VolumeShare percent of the size of the volume holding dir.
func EmbeddedStore(dir string, maxStore int64) (int64, error) {
	if maxStore > 0 {
		return maxStore, nil
	}
	size, err := volumeSize(dir)
	if err != nil {
		return 0, fmt.Errorf("size of the volume of %s: %w", dir, err)
	}
	return size / 100 * VolumeShare, nil
}

// StreamBytes is what the streams and buckets share within a store of
// storeBytes.
func StreamBytes(storeBytes int64) int64 { return storeBytes / 100 * StreamShare }
