// Command instachat is the Instachat chat backend: one binary whose
// subcommands serve the API and maintain the data, one file each. Every
// flag mirrors an INSTACHAT_* environment variable; `instachat help` lists
// the subcommands and `instachat help CMD` the flags of one. The load tools
// are cmd/instachat-bench, apart from this binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/instachat/instachat/server"
)

// command is one subcommand: its name, one line for the usage, and what
// carries it out with the arguments after its name.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, sys *system) error
}

// commands are the subcommands, in the order the usage lists them. They
// are set in init because their help reads this list.
var commands []command

func init() {
	commands = []command{
		{"serve", "serve the API (the default when no command is given)", serve},
		{"migrate", "apply the schema migrations (idempotent; serve does it too)", migrate},
		{"recount", "recompute chats_count and messages_count from the rows", recount},
		{"reindex", "rebuild the Elasticsearch index from the store (embedded: nothing to do)", reindex},
		{"config", "print the effective configuration (secrets hidden), then what is wrong with it", printConfig},
		{"healthcheck", "GET /healthz of the server these settings start here; exit 1 unless it answers 200", healthcheck},
	}
}

// system is what a command reads and writes besides its arguments.
type system struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// errUsage is a mistake in the command line, answered with the usage.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // -help printed the usage
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "instachat:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "instachat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sys := &system{getenv: getenv, stdout: stdout, stderr: stderr}
	name := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "help" && len(args) > 1:
			return help(ctx, args[1], sys)
		case a == "help" || a == "-h" || a == "-help" || a == "--help":
			usage(stdout)
			return nil
		case !strings.HasPrefix(a, "-"):
			name, args = a, args[1:]
		}
	}
	c, ok := lookup(name)
	if !ok {
		usage(stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, name)
	}
	return c.run(ctx, args, sys)
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// help is `instachat help CMD`: CMD's usage and flags, on stdout.
func help(ctx context.Context, name string, sys *system) error {
	c, ok := lookup(name)
	if !ok {
		usage(sys.stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, name)
	}
	err := c.run(ctx, []string{"-help"}, &system{getenv: sys.getenv, stdout: sys.stdout, stderr: sys.stdout})
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: instachat [COMMAND] [flags]\n\nInstachat, a chat-messaging backend. Commands:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'instachat help COMMAND' for the flags of a command. Every flag mirrors\n"+
		"an INSTACHAT_* environment variable; a flag wins over its variable.\n")
}

// flagSet is the flag set of a subcommand taking the server's settings;
// -help prints what the command does and every setting.
func flagSet(name string, sys *system) *flag.FlagSet {
	fs := flag.NewFlagSet("instachat "+name, flag.ContinueOnError)
	fs.SetOutput(sys.stderr)
	fs.Usage = func() {
		c, _ := lookup(name)
		fmt.Fprintf(sys.stderr, "Usage: instachat %s [flags]\n\n%s.\n\nFlags (each also set by the environment "+
			"variable named):\n", name, upperFirst(c.summary))
		server.PrintFlags(sys.stderr)
	}
	return fs
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// loadConfig reads the settings of a command that runs the server or its
// store: the environment, then the flags in args. It refuses a value that
// does not parse and a half-configured topology, naming the settings.
func loadConfig(name string, args []string, sys *system) (server.Config, error) {
	cfg, problems, err := server.ParseConfig(flagSet(name, sys), args, sys.getenv)
	if err != nil {
		return cfg, err
	}
	if len(problems) > 0 {
		return cfg, errors.Join(problems...)
	}
	_, err = cfg.Production()
	return cfg, err
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level)) // the configuration validated it
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
