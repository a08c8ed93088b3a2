package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// commandHelp is what "rehook COMMAND --help" says above the flags and the
// environment.
var commandHelp = map[string]string{
	"dev": `Usage: rehook dev

Runs the API and a worker in one process on the embedded default: a SQLite
file under REHOOK_DATA_DIR and an in-process Redis (unless REHOOK_REDIS_URL is
set), with the admin listener. Prints the addresses and an admin API key.`,
	"api": `Usage: rehook api

Serves the HTTP API, and the admin listener (dashboard, metrics, health).
Needs REHOOK_DATABASE_URL and REHOOK_REDIS_URL.`,
	"worker": `Usage: rehook worker

Delivers queued executions, re-queues those whose task was lost, and serves
the admin listener. Run as many as you like on one Redis and one database;
on one host, give each its own REHOOK_ADMIN_ADDR.
Needs REHOOK_DATABASE_URL and REHOOK_REDIS_URL.`,
	"migrate": `Usage: rehook migrate

Applies the database migrations and exits.`,
	"apikey": `Usage: rehook apikey create --scope ACCOUNT[/ORG[/PROJECT]] --role view|edit|admin
       rehook apikey list
       rehook apikey revoke ID

Creates (printing the key alone on the last line; only its hash is stored),
lists or revokes API keys.`,
	"rotate-secrets": `Usage: rehook rotate-secrets

Encrypts every stored webhook secret with REHOOK_ENCRYPTION_KEY: those
stored in the clear and those encrypted with a key of
REHOOK_ENCRYPTION_OLD_KEYS. Safe to run while rehook runs, and to run again.`,
	"healthcheck": `Usage: rehook healthcheck [--timeout D] [URL]

Exits 0 when URL (default ` + defaultHealthURL + `) answers 2xx
within the timeout, else 1: the health check of a container image that has
no shell or curl, such as rehook's.`,
	"version": `Usage: rehook version

Prints rehook's version.`,
}

// printHelp writes the help of cmd: what it does, its flags with their
// defaults, and the environment it reads with the defaults for it.
func printHelp(w io.Writer, cmd string, fs *flag.FlagSet) {
	fmt.Fprintln(w, commandHelp[cmd])
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  --%s\n        %s%s\n", f.Name, f.Usage, def)
	})
	fmt.Fprintln(w, "  -h, --help\n        show this help")
	fmt.Fprintln(w)
	printSettings(w, cmd)
}

// parseFlags parses the flags of cmd. -h or --help writes the help to
// stdout; a wrong flag writes the error and the help to stderr. done says
// that the command has nothing more to do.
func parseFlags(fs *flag.FlagSet, cmd string, args []string, stdout, stderr io.Writer) (
	done bool, err error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err = fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, cmd, fs)
		return true, nil
	case err != nil:
		fmt.Fprintf(stderr, "rehook %s: %v\n\n", cmd, err)
		printHelp(stderr, cmd, fs)
		return true, err
	}
	return false, nil
}

// settingsOf lists the variables that cmd reads.
func settingsOf(cmd string) []setting {
	var out []setting
	for _, s := range settings {
		if strings.Contains(" "+s.used+" ", " "+cmd+" ") {
			out = append(out, s)
		}
	}
	return out
}
