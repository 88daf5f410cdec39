package serialdev_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/loyalty-terminal/loyalty/device/serialdev"
	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// foreignPtyEnv names the pty index the test binary, run again as a
// helper in a mount namespace of its own, makes a process hold there.
const foreignPtyEnv = "SERIALDEV_TEST_FOREIGN_PTY"

func TestMain(m *testing.M) {
	if n := os.Getenv(foreignPtyEnv); n != "" {
		os.Exit(holdForeignPty(n))
	}
	os.Exit(m.Run())
}

// holdForeignPty runs in a mount namespace of its own: it mounts a new
// devpts instance on /dev/pts, opens its pseudo-terminals up to index n,
// starts a sleep holding only the slave /dev/pts/n (as a reader of a
// terminal in a container would), prints "holder PID" and waits for its
// stdin to close.
func holdForeignPty(n string) int {
	want, err := strconv.Atoi(n)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	if err := unix.Mount("devpts", "/dev/pts", "devpts", 0, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		fmt.Println("mount:", err)
		return 3
	}
	var masters []*os.File
	for {
		m, err := os.OpenFile("/dev/pts/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			fmt.Println("error:", err)
			return 2
		}
		masters = append(masters, m)
		if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
			fmt.Println("error: unlockpt:", err)
			return 2
		}
		i, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
		if err != nil || i > want {
			fmt.Println("error: ptsname:", i, err)
			return 2
		}
		if i == want {
			break
		}
	}
	slave, err := os.OpenFile("/dev/pts/"+n, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	sleep := exec.Command("sleep", "120")
	sleep.Stdin = slave
	if err := sleep.Start(); err != nil {
		fmt.Println("error:", err)
		return 2
	}
	slave.Close()
	fmt.Println("holder", sleep.Process.Pid)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the test closes it
	_ = sleep.Process.Kill()
	_ = sleep.Wait()
	for _, m := range masters {
		m.Close()
	}
	return 0
}

// TestHoldersOfAnotherPtyInstance: a process holding /dev/pts/N of another
// devpts instance (a container's terminal, say) is no holder of this
// instance's /dev/pts/N, though /proc names both /dev/pts/N, and the port
// opens. Before, Holders matched the name, so a reader refused its port as
// busy while such a process existed (likely what the previous session saw
// as e2e TestFieldHeadOfficeRestored failing with "two ptys on /dev/pts/0").
func TestHoldersOfAnotherPtyInstance(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	n := strings.TrimPrefix(slave.Name(), "/dev/pts/")
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), foreignPtyEnv+"="+n)
	helper.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // and / made private (os/exec)
	helper.Stderr = os.Stderr
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		testkit.Missing(t, "mount namespace", fmt.Sprintf("cannot start a process in a mount namespace of its own (%v; needs root)", err))
	}
	defer func() { stdin.Close(); _ = helper.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.HasPrefix(line, "mount:") {
		testkit.Missing(t, "devpts mount", fmt.Sprintf("cannot mount a devpts instance (%s; needs root)", strings.TrimSpace(line)))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "holder ")))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	// The premise: /proc names the other instance's pty as this one's.
	if name, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid)); err != nil || name != slave.Name() {
		t.Fatalf("the helper's sleep holds %q (%v), want a pty named %s", name, err, slave.Name())
	}
	for _, h := range serialdev.Holders(slave.Name()) {
		if h.PID == pid {
			t.Fatalf("holders of %s name %v, which holds another devpts instance's %s", slave.Name(), h, slave.Name())
		}
	}
	port, err := serialdev.OpenSerial(slave.Name(), serialdev.SerialOptions{}, 0)
	if err != nil {
		t.Fatalf("open beside another instance's %s: %v", slave.Name(), err)
	}
	port.Close()
}
