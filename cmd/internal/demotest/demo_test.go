package demotest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/device/testkit"
)

// TestDemo runs the demo script end to end with 60 customers and checks
// each of its steps said what it claims: every member known at both
// stores, the dated history split from the live replay, both registers
// fully acknowledged, the offline double spend reported, and a retention
// report over the history that finds repeat buyers.
func TestDemo(t *testing.T) {
	for _, tool := range []string{"mosquitto", "jq", "curl", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			if tool != "mosquitto" || !exists("/usr/sbin/mosquitto") {
				testkit.Missing(t, tool, "make demo drives the services with it (make testdeps installs it)")
			}
		}
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin, dir := t.TempDir(), t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/loyalty-terminal/loyalty/cmd/loyaltyd", "github.com/loyalty-terminal/loyalty/cmd/loyalty-hq")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the binaries: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, ".ci", "demo"))
	cmd.Env = append(os.Environ(), "DEMO_DIR="+dir, "DEMO_BIN="+bin, "DEMO_KEEP=0", "DEMO_CUSTOMERS=60", "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	text := out.String()
	if err != nil {
		logs := ""
		for _, f := range []string{"hq.log", "store1-r1.log", "store2-r1.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, f))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			logs += "\n--- " + f + "\n" + string(b)
		}
		t.Fatalf("demo failed: %v\n%s%s", err, text, logs)
	}
	for _, want := range []string{
		"every member is known at both stores",
		"head office's history",
		"rung up again now",
		"duplicates 0, held 0",
		"took the chain-wide balance to",
		"Retention report as of",
	} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	// The history reaches back about 18 months, so the report finds
	// repeat buyers (today's sales alone would have none).
	m := regexp.MustCompile(`repeat buyers (\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no repeat-buyer count in the report:\n%s", text)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("the report finds no repeat buyers:\n%s", text)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
		t.Errorf("no HTML report: %v", err)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
