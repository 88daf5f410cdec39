package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Where loyaltyctl looks for the daemon's config when -config and
// LOYALTY_CONFIG are not given: the installed package's file, then the
// development config `make run` uses (relative to the current folder).
var defaultConfigs = []string{"/etc/loyalty/loyaltyd.yaml", "configs/loyaltyd.dev.yaml"}

const (
	fallbackAddr   = "http://127.0.0.1:8080"
	fallbackLedger = "/var/lib/loyalty/ledger.db"
)

// target is the daemon loyaltyctl talks to and the ledger it may open.
type target struct {
	addr, socket, token, ledger string
	caFile                      string // api.tls_cert_file: the listener speaks HTTPS with it
	config                      string // the config file read, if any
	// from says where the address or socket came from: a flag, its
	// environment variable, the config, or the built-in default.
	from string
	// register and replica are register.id and ledger.replica_dir from
	// the config (restore-replica).
	register, replica string
}

func (t target) describe() string {
	via := t.addr
	if t.socket != "" {
		via = "socket " + t.socket
	}
	if t.from != "" {
		return via + " from " + t.from
	}
	if t.config == "" {
		return via + " (no config file found)"
	}
	return via + " from " + t.config
}

// daemonConfig is the part of loyaltyd's config loyaltyctl needs. Unknown
// keys are ignored here: loyaltyd itself validates the file.
type daemonConfig struct {
	Register struct {
		ID string `yaml:"id"`
	} `yaml:"register"`
	Ledger struct {
		Path       string `yaml:"path"`
		ReplicaDir string `yaml:"replica_dir"`
	} `yaml:"ledger"`
	API struct {
		Listen    string `yaml:"listen"`
		Socket    string `yaml:"socket"`
		Token     string `yaml:"token"`
		TokenFile string `yaml:"token_file"`
		TLSCert   string `yaml:"tls_cert_file"`
	} `yaml:"api"`
}

// resolveTarget decides the address, socket, token and ledger: a flag (or
// its environment variable) wins; then the daemon's config; then the
// built-in defaults. An explicitly named config that cannot be read is an
// error; a default one that is missing is skipped.
func resolveTarget(cfgPath, addr, socket, token, ledgerPath string) (target, error) {
	t := target{addr: addr, socket: socket, token: token, ledger: ledgerPath}
	switch {
	case socket != "":
		t.from = "-socket (or LOYALTY_SOCKET)"
	case addr != "":
		t.from = "-addr (or LOYALTY_API)"
	}
	var dc daemonConfig
	path, explicit := cfgPath, cfgPath != ""
	if !explicit {
		for _, p := range defaultConfigs {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path != "" {
		raw, err := os.ReadFile(path)
		switch {
		case err != nil && (explicit || !errors.Is(err, fs.ErrNotExist)):
			return t, fmt.Errorf("config %s: %w", path, err)
		case err == nil:
			if err := yaml.Unmarshal(raw, &dc); err != nil {
				return t, fmt.Errorf("config %s: not valid YAML (run loyaltyd -config %s -check): %w", path, path, err)
			}
			t.config = path
		}
	}
	if t.addr == "" && t.socket == "" {
		// A socket the config names and that exists is local and needs no
		// token; otherwise the TCP listener.
		if s := dc.API.Socket; s != "" {
			if _, err := os.Stat(s); err == nil {
				t.socket = s
			}
		}
		if t.socket == "" {
			t.addr = listenURL(dc.API.Listen)
			if dc.API.TLSCert != "" && dc.API.Listen != "" && dc.API.Listen != "off" {
				// The listener speaks HTTPS only; trust its certificate.
				t.addr = "https://" + strings.TrimPrefix(t.addr, "http://")
			}
		}
	}
	if t.addr == "" {
		t.addr = fallbackAddr
		if t.config == "" {
			t.from = "the built-in default"
		}
	}
	if strings.HasPrefix(t.addr, "https://") {
		t.caFile = dc.API.TLSCert
	}
	if t.token == "" {
		t.token = dc.API.Token
		if t.token == "" && dc.API.TokenFile != "" {
			if b, err := os.ReadFile(dc.API.TokenFile); err == nil {
				t.token = strings.TrimSpace(string(b))
			}
		}
	}
	if t.ledger == "" {
		t.ledger = dc.Ledger.Path
		t.register, t.replica = dc.Register.ID, dc.Ledger.ReplicaDir
	}
	if t.ledger == "" {
		t.ledger = fallbackLedger
	}
	return t, nil
}

// listenURL turns the daemon's api.listen into a URL to call: a wildcard
// or empty host is called on loopback; "off" and "" give the default.
func listenURL(listen string) string {
	if listen == "" || listen == "off" {
		return fallbackAddr
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fallbackAddr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
