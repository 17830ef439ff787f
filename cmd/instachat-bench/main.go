// Command instachat-bench holds the load tools, apart from the server
// binary so that it links no plotting, PDF or progress-bar code:
//
//	instachat-bench load [flags]      drive a running server with load and report
//	instachat-bench populate [flags]  bulk-load an embedded data directory
//	instachat-bench growth [flags]    create throughput against stored messages
//	instachat-bench streams [flags]   event streams: memory, delivery latency, create cost
//
// docs/BENCHMARKS.md gives the commands behind its figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/instachat/instachat/bench"
)

// command is one subcommand: its name, one line for the usage, and what
// runs it with the arguments after its name.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"load", "drive a running server with load and report throughput, latency and visibility lag", bench.Load},
	{"populate", "bulk-load applications, chats and messages into an embedded data directory", bench.Populate},
	{"growth", "populate an embedded store in steps and measure create throughput at each", bench.Growth},
	{"streams", "hold event streams, time each event from its create's answer to every subscriber", bench.Streams},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp): // -help printed the flags
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "instachat-bench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "instachat-bench:", err)
		os.Exit(1)
	}
}

// errUsage is a mistake in the command line, answered with the usage.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) == 0 {
			usage(stdout)
			return nil
		}
		// help CMD is CMD -help, whose flag set prints its usage, here
		// to stdout as asked for.
		name, args, stderr = args[0], []string{"-help"}, stdout
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, args, stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, name)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: instachat-bench COMMAND [flags]")
	fmt.Fprintln(w, "\nThe load tools of Instachat (docs/BENCHMARKS.md). Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'instachat-bench help COMMAND' for a command's flags.")
}
