package api_test

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/api"
)

// TestOpenAPIDocumentsEveryRoute keeps docs/openapi.yaml and docs/api.md in
// step with the routes the server really serves.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("../../../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile("../../../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	s := api.New(api.Options{Ledger: nil})
	for _, r := range s.Routes() {
		method, path, _ := strings.Cut(r, " ")
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("openapi.yaml lacks path %s", path)
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("openapi.yaml lacks %s %s", method, path)
		}
		if !strings.Contains(string(md), path) && !strings.Contains(path, "{action}") && !strings.Contains(path, "{what}") {
			t.Errorf("api.md does not mention %s", path)
		}
	}
}
