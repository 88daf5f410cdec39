package manager

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrSimDirInUse is returned by New when another process (another loyaltyd
// whose ledger sits in the same folder, say) holds the folder of simulated
// devices: the two would replace each other's links, and one register's
// scans would reach the other.
var ErrSimDirInUse = errors.New("folder of simulated devices in use by another process")

// simLockName is the lock file inside SimDir, held with flock(2) for the
// manager's life; the kernel lets it go when the process dies.
const simLockName = ".lock"

// lockSimDir creates SimDir and takes its lock, once, before the first
// simulator is made. Only managers with simulated devices take it: a
// register on real hardware never touches SimDir.
func (m *Manager) lockSimDir() error {
	if m.simLock != nil {
		return nil
	}
	if err := os.MkdirAll(m.cfg.SimDir, 0o750); err != nil {
		return fmt.Errorf("device config: simulated devices: %w", err)
	}
	path := filepath.Join(m.cfg.SimDir, simLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("device config: simulated devices: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("device config: %s: %w (each register needs a folder of its own: put its ledger in another folder)", m.cfg.SimDir, ErrSimDirInUse)
		}
		return fmt.Errorf("device config: simulated devices: lock %s: %w", path, err)
	}
	m.simLock = f
	return nil
}
