package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/instachat/instachat/server"
)

// printConfig is `instachat config`: every setting as VAR=value, the value
// the server would use (passwords and the admin token hidden), then what
// stops the configuration from starting a server, if anything: a value
// that does not parse (shown at the value it would keep) or the settings a
// half-configured topology lacks.
func printConfig(_ context.Context, args []string, sys *system) error {
	cfg, problems, err := server.ParseConfig(flagSet("config", sys), args, sys.getenv)
	if err != nil {
		return err
	}
	for _, o := range server.Options {
		fmt.Fprintf(sys.stdout, "%s=%s\n", o.Env, o.Value(cfg))
	}
	if _, err := cfg.Production(); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("the configuration cannot start a server:\n%w", errors.Join(problems...))
	}
	return nil
}
