package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kitd-dev/kitd/update"
)

// exitCode makes `run` exit with a given status: the status of a new
// version the update launcher supervised.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// launchUpdate is the first thing `kitd run` does: the update launcher
// may exec the installed version, or run a pending one's trial and
// return its exit status (see update/doc.go). It returns this process's
// trial, nil when it is none.
func (e *env) launchUpdate() (*update.Trial, error) {
	log, err := e.logger()
	if err != nil {
		return nil, err
	}
	dir := update.Dir(e.getenv)
	if code, exit := update.Launch(update.LaunchOptions{Dir: dir, Args: os.Args, Environ: e.environ, Log: log}); exit {
		return nil, exitCode(code)
	}
	return update.OpenTrial(dir, version, e.getenv, log)
}

// updateCmd holds the release tools. Their flags are Go-style single-dash
// (-key, -pub, -sig), as DESIGN.md's CLI contract writes them; cobra's
// parser would read -key as -k -e -y, so these commands parse their own.
func (e *env) updateCmd() *cobra.Command {
	c := &cobra.Command{Use: "update", Short: "sign and verify kitd releases for kitd.update jobs"}
	sign := &cobra.Command{
		Use:                "sign -key PRIV FILE",
		Short:              "print FILE's size, sha256 and ed25519 signature (base64, last line)",
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			fs := e.flagSet("update sign -key PRIV FILE")
			key := fs.String("key", "", "ed25519 private key, PEM \"PRIVATE KEY\" (openssl genpkey -algorithm ed25519)")
			file, err := parseOne(fs, args, "key", key)
			if err != nil || file == "" {
				return err
			}
			priv, err := update.LoadPrivateKey(*key)
			if err != nil {
				return usageError{fmt.Errorf("-key: %w", err)}
			}
			size, sum, err := digest(file)
			if err != nil {
				return err
			}
			sig, err := update.SignFile(priv, file)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "size: %d\nsha256: %s\n%s\n", size, sum, sig)
			return err
		},
	}
	verify := &cobra.Command{
		Use:                "verify -pub PUB -sig SIG FILE",
		Short:              "exit 0 when SIG is FILE's ed25519 signature by PUB, 1 when it is not",
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			fs := e.flagSet("update verify -pub PUB -sig SIG FILE")
			pubFile := fs.String("pub", "", "ed25519 public key, PEM \"PUBLIC KEY\" (openssl pkey -pubout)")
			sigArg := fs.String("sig", "", "the signature: base64, or a file holding it (base64, or the 64 raw bytes openssl pkeyutl -sign writes)")
			file, err := parseOne(fs, args, "pub", pubFile)
			if err != nil || file == "" {
				return err
			}
			if *sigArg == "" {
				return usageError{errors.New("-sig: required")}
			}
			pub, err := update.LoadPublicKey(*pubFile)
			if err != nil {
				return usageError{fmt.Errorf("-pub: %w", err)}
			}
			sig, err := readSignature(*sigArg)
			if err != nil {
				return usageError{fmt.Errorf("-sig: %w", err)}
			}
			if err := update.VerifyFile(pub, sig, file); err != nil {
				return err // exit 1: not verified (or FILE unreadable)
			}
			_, err = fmt.Fprintf(e.stdout, "verified: %s\n", file)
			return err
		},
	}
	c.AddCommand(sign, verify)
	return c
}

func (e *env) flagSet(usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("kitd "+usage, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: kitd %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseOne parses args into fs and returns the one FILE argument; "" and
// nil after -h (usage printed). The flag named req must be set.
func parseOne(fs *flag.FlagSet, args []string, req string, val *string) (string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", nil
		}
		return "", usageError{err}
	}
	if *val == "" {
		return "", usageError{fmt.Errorf("-%s: required", req)}
	}
	if fs.NArg() != 1 {
		return "", usageError{fmt.Errorf("want exactly one FILE, got %d arguments", fs.NArg())}
	}
	return fs.Arg(0), nil
}

func digest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// readSignature takes base64 text, or a file holding base64 text or the
// raw signature.
func readSignature(arg string) ([]byte, error) {
	if sig, err := update.DecodeSignature(arg); err == nil {
		return sig, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, fmt.Errorf("neither a base64 signature nor a readable file: %w", err)
	}
	if len(b) == 64 {
		if _, err := update.DecodeSignature(strings.TrimSpace(string(b))); err != nil {
			return b, nil // raw bytes, as openssl pkeyutl -out writes
		}
	}
	return update.DecodeSignature(string(b))
}
