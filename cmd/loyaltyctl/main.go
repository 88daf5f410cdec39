// Command loyaltyctl is a placeholder until its implementation lands.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	fmt.Fprintf(os.Stderr, "loyaltyctl %s: not built yet\n", version)
	os.Exit(1)
}
