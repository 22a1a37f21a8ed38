// Command orville is the Orville calling server and its operator tools:
//
//	orville serve          run the server (the default)
//	orville test-calling   check a deployment end to end from the messaging host
//	orville loadtest       load a server with synthetic calls and report
//	orville drain          drain a server before a restart (POST /v1/drain)
//	orville firewall-rules print nftables, ufw or firewalld rules for the configuration
//	orville version        print the version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr, getenv)
	case "test-calling":
		return testCalling(args, stdout, stderr, getenv)
	case "loadtest":
		return loadTest(args, stdout, stderr, getenv)
	case "drain":
		return drainCommand(args, stdout, stderr, getenv)
	case "firewall-rules":
		return firewallRules(args, stdout, stderr, getenv)
	case "version":
		fmt.Fprintf(stdout, "orville %s\n", version)
		return 0
	case "help":
		fmt.Fprintln(stdout, "usage: orville [serve|test-calling|loadtest|drain|firewall-rules|version] [flags]; orville CMD -h for flags")
		return 0
	default:
		fmt.Fprintf(stderr, "orville: unknown command %q (serve, test-calling, loadtest, drain, firewall-rules, version)\n", cmd)
		return 2
	}
}
