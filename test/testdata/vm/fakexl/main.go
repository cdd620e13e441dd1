// Command fakexl stands in for Xen's xl in moor's tests. It records every
// call in $FAKE_XL_DIR/calls and keeps each domain's state flags in
// $FAKE_XL_DIR/<name>.state, so a test can watch and steer a domain's life:
// remove the state file to power the guest off from inside, create
// <name>.ignore-acpi to make it ignore xl shutdown.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	dir := os.Getenv("FAKE_XL_DIR")
	if dir == "" {
		dir = "/run/fakexl"
	}
	if err := run(dir, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dir string, args []string) error {
	f, err := os.OpenFile(filepath.Join(dir, "calls"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, strings.Join(args, " "))
	f.Close()
	if len(args) < 2 {
		return fmt.Errorf("usage: xl <verb> [-flags] <domain|cfg>")
	}
	verb, target := args[0], args[len(args)-1]
	state := func(name string) string { return filepath.Join(dir, name+".state") }
	if verb == "create" {
		cfg, err := os.ReadFile(target)
		if err != nil {
			return err
		}
		m := regexp.MustCompile(`(?m)^name = '([^']+)'`).FindSubmatch(cfg)
		if m == nil {
			return fmt.Errorf("%s: no name", target)
		}
		name := string(m[1])
		if _, err := os.Stat(state(name)); err == nil {
			return fmt.Errorf("domain with name %q already exists", name)
		}
		flags := "-b----"
		if args[1] == "-p" {
			flags = "--p---"
		}
		return os.WriteFile(state(name), []byte(flags), 0o644)
	}
	b, err := os.ReadFile(state(target))
	if err != nil {
		return fmt.Errorf("%s is an invalid domain identifier (rc=-6)", target)
	}
	switch verb {
	case "list":
		fmt.Printf("Name                                        ID   Mem VCPUs\tState\tTime(s)\n")
		fmt.Printf("%-40s %5d %5d %5d     %s %8.1f\n", target, 1, 64, 1, b, 0.1)
	case "unpause":
		return os.WriteFile(state(target), []byte("-b----"), 0o644)
	case "pause":
		return os.WriteFile(state(target), []byte("--p---"), 0o644)
	case "shutdown":
		if _, err := os.Stat(filepath.Join(dir, target+".ignore-acpi")); err == nil {
			return nil
		}
		return os.Remove(state(target)) // powered off; xl destroys it
	case "destroy":
		return os.Remove(state(target))
	default:
		return fmt.Errorf("fakexl: unknown verb %q", verb)
	}
	return nil
}
