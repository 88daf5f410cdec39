package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/daemon"
)

// TestCheckFiles: the files loyaltyd -check now reads as the daemon does at
// start (it said "ok" for a missing api.token_file, and the daemon then
// stopped with "api.token_file: stat ...: no such file or directory").
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("token", "0123456789abcdef0123\n", 0o600)
	open := write("open-token", "0123456789abcdef0123\n", 0o644)
	short := write("short-token", "short\n", 0o600)
	pw := write("password", "secret\n", 0o600)
	missing := filepath.Join(dir, "none")
	for _, tc := range []struct {
		name string
		cfg  config.Config
		want string // "" = no error
	}{
		{"nothing named", config.Config{}, ""},
		{"good token", config.Config{API: config.API{TokenFile: good}}, ""},
		{"missing token", config.Config{API: config.API{TokenFile: missing}}, "api.token_file"},
		{"token readable by others", config.Config{API: config.API{TokenFile: open}}, "may be read by anyone"},
		{"short token", config.Config{API: config.API{TokenFile: short}}, "shorter than 16"},
		{"missing metrics token", config.Config{API: config.API{MetricsTokenFile: missing}}, "api.metrics_token_file"},
		{"same token twice", config.Config{API: config.API{TokenFile: good, MetricsTokenFile: good}}, "same token"},
		{"sync password", config.Config{Sync: config.Sync{Enabled: true, PasswordFile: pw}}, ""},
		{"missing sync password", config.Config{Sync: config.Sync{Enabled: true, PasswordFile: missing}}, "sync password"},
		{"sync off: its password is not read", config.Config{Sync: config.Sync{PasswordFile: missing}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := daemon.CheckFiles(tc.cfg)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("CheckFiles: %v, want %q", err, tc.want)
			}
		})
	}
}
