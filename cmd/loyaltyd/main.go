// Command loyaltyd is a placeholder until its implementation lands.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	fmt.Fprintf(os.Stderr, "loyaltyd %s: not built yet\n", version)
	os.Exit(1)
}
