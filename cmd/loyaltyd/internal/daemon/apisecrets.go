package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/config"
)

// secrets are the API's tokens, read from their files, and the host
// names it answers to.
type secrets struct {
	token, metricsToken string
	hosts               []string
}

// apiSecrets reads api.token_file and api.metrics_token_file (first line,
// at least 16 characters; a file anyone may read is refused) and adds the
// listen address's host name to api.hosts.
func apiSecrets(c config.API) (secrets, error) {
	var s secrets
	var err error
	if s.token, err = readSecret("api.token_file", c.TokenFile); err != nil {
		return s, err
	}
	if s.metricsToken, err = readSecret("api.metrics_token_file", c.MetricsTokenFile); err != nil {
		return s, err
	}
	if s.token != "" && s.token == s.metricsToken {
		return s, errors.New("api.metrics_token_file holds the same token as api.token_file; the metrics token must open nothing else")
	}
	s.hosts = append(s.hosts, c.Hosts...)
	if host, _, err := net.SplitHostPort(c.Listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			s.hosts = append(s.hosts, host)
		}
	}
	return s, nil
}

func readSecret(key, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("%s: %s may be read by anyone (mode %v); chmod 600 it", key, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	tok := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if len(tok) < 16 {
		return "", fmt.Errorf("%s: the token in %s is shorter than 16 characters", key, path)
	}
	return tok, nil
}

// CheckFiles reads the secret files the daemon reads at start
// (api.token_file, api.metrics_token_file, and sync.password_file when
// sync is on) and returns the first problem in the words the daemon
// would stop with; loyaltyd -check runs it, so a config it passes does
// not then fail to start on one of them.
func CheckFiles(c config.Config) error {
	if _, err := apiSecrets(c.API); err != nil {
		return err
	}
	if c.Sync.Enabled && c.Sync.PasswordFile != "" {
		if _, err := os.ReadFile(c.Sync.PasswordFile); err != nil {
			return fmt.Errorf("sync password: %w", err)
		}
	}
	return nil
}
