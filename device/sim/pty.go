package sim

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// openRaw opens a pty pair and puts the slave in raw mode, so bytes written
// to the master before a reader opens the slave are not translated (CR to
// NL) or echoed back.
func openRaw() (master, slave *os.File, err error) {
	master, slave, err = pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("sim: open pty: %w", err)
	}
	t, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err == nil {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		err = unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, t)
	}
	if err != nil {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("sim: raw mode: %w", err)
	}
	// creack/pty hands back a blocking master, and Close does not wake a
	// goroutine blocked in Read on a blocking fd. A non-blocking duplicate
	// goes through Go's poller, so Unplug can stop the reader.
	fd, err := unix.Dup(int(master.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("sim: pty master: %w", err)
	}
	name := master.Name()
	master.Close()
	return os.NewFile(uintptr(fd), name), slave, nil
}

// relink atomically points link at target (rename over the old link), so a
// reader never sees a moment where the name points nowhere during replug.
func relink(target, link string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o750); err != nil {
		return fmt.Errorf("sim: link dir: %w", err)
	}
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("sim: symlink: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("sim: symlink: %w", err)
	}
	return nil
}
