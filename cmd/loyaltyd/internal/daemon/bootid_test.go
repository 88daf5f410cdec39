package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadBootID: the boot id comes from systemd's credential when the
// unit passes one (its ProcSubset=pid hides /proc/sys), else from the
// kernel's file; only a UUID is taken, so garbage reads as unknown.
func TestReadBootID(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cred := filepath.Join(dir, "cred")
	if err := os.Mkdir(cred, 0o700); err != nil {
		t.Fatal(err)
	}
	const a, b = "0f5c3c1e-6d1b-4bd6-9a55-1d1c2e7b9a01", "7e0b58a4-2c1f-4c55-8d8e-3b0a9f6c4d22"
	proc := write("proc_boot_id", b+"\n")
	missing := filepath.Join(dir, "nope")
	for _, tc := range []struct {
		name, cred, credFile, proc, want string
	}{
		{"credential first", cred, a + "\n", proc, a},
		{"no credential directory", "", "", proc, b},
		{"credential directory without boot_id", cred, "", proc, b},
		{"garbage credential falls back", cred, "not a uuid", proc, b},
		{"nothing readable", "", "", missing, ""},
		{"garbage everywhere", cred, "x", write("bad", "0f5c3c1e-6d1b-4bd6-9a55-1d1c2e7b9a0Z\n"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(cred, "boot_id"))
			if tc.credFile != "" {
				if err := os.WriteFile(filepath.Join(cred, "boot_id"), []byte(tc.credFile), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := readBootID(tc.cred, tc.proc); got != tc.want {
				t.Fatalf("readBootID = %q, want %q", got, tc.want)
			}
		})
	}
	if got := readBootID("", "/proc/sys/kernel/random/boot_id"); !isUUID(got) {
		t.Fatalf("this machine's boot id %q", got)
	}
}
