// Package demotest runs `make demo` (.ci/demo) as a test: the README's
// tour of the system must keep working as the system changes. It starts
// real mosquitto, loyalty-hq and two loyaltyd processes through the script
// itself, with a small number of customers, and checks what the script
// says it shows.
package demotest
