package prosodytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

// ctlWaitDelay bounds how long a cancelled prosodyctl may linger.
const ctlWaitDelay = 2 * time.Second

// Prosodyctl runs prosodyctl with the server's config and the given
// arguments, and returns its standard output. The error includes its
// standard error output. prosodyctl may print more than the answer on
// standard output, such as Prosody's multi-line banner about a missing
// optional dependency (lua-unbound): use Eval for values.
func (s *Server) Prosodyctl(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("prosodytest: Prosodyctl without a command")
	}
	// Never without --config: prosodyctl would act on /etc/prosody.
	cmd := s.group.CommandContext(ctx, s.ctl, append([]string{"--config", s.ConfigFile}, args...)...)
	cmd.Dir = s.Dir
	cmd.WaitDelay = ctlWaitDelay
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := testproc.Run(cmd); err != nil {
		return stdout.String(), fmt.Errorf("prosodyctl %s: %w: %s",
			args[0], err, strings.TrimSpace(stderr.String()+"\n"+stdout.String()))
	}
	return stdout.String(), nil
}

// AddUser registers user (a localpart) on Domain with password, using
// prosodyctl register. An existing account gets the new password. It works
// whether or not prosody is running.
func (s *Server) AddUser(ctx context.Context, user, password string) error {
	if err := testserver.CheckLocalpart("prosodytest", user); err != nil {
		return err
	}
	if password == "" {
		return errors.New("prosodytest: empty password")
	}
	if _, err := s.Prosodyctl(ctx, "register", user, s.Domain, password); err != nil {
		return fmt.Errorf("prosodytest: register %s@%s: %w", user, s.Domain, err)
	}
	return nil
}

// NewUser registers a new account whose localpart starts with prefix and
// is unique on this server, with a random password. It fails t on error.
func (s *Server) NewUser(t testing.TB, prefix string) (jid, password string) {
	t.Helper()
	return testserver.NewUser(t, "prosodytest", s.Domain, prefix, &s.userSeq, s.AddUser)
}

// Shell runs one command of Prosody's admin console (prosodyctl shell)
// inside the running server and returns its output, for example
// "c2s:show()" or, for Lua evaluated in the server, ">return 1+1". It fails
// when the server is not running or the command reports an error. It talks
// to the admin socket Dir/data/prosody.sock, so Dir must be short enough
// for a Unix socket path (about 100 bytes: mind a long TMPDIR).
func (s *Server) Shell(ctx context.Context, command string) (string, error) {
	out, err := s.Prosodyctl(ctx, "shell", command)
	if err != nil {
		return out, fmt.Errorf("prosodytest: shell %q: %w", command, err)
	}
	return out, nil
}

// Markers around the value that Eval asks the server to print: whatever
// else prosodyctl prints (a banner about a missing optional dependency,
// warnings, the admin console's "Result: " prefix) stays outside.
const (
	evalBegin = "<<jinglekit-eval:"
	evalEnd   = ":jinglekit-eval>>"
)

// Eval runs a chunk of Lua inside the running server through the admin
// console and returns the value the chunk returns, converted with Lua's
// tostring: Eval(ctx, `return 1+1`) is "2". The chunk is one line without
// a trailing comment. An error raised by the chunk is returned as an
// error. Anything else prosodyctl prints on standard output does not
// change the result.
func (s *Server) Eval(ctx context.Context, chunk string) (string, error) {
	if strings.ContainsAny(chunk, "\r\n") {
		return "", errors.New("prosodytest: Eval of a chunk of several lines")
	}
	command := `>return ` + luaQuote(evalBegin) + ` .. tostring((function() ` + chunk +
		` end)()) .. ` + luaQuote(evalEnd)
	out, err := s.Shell(ctx, command)
	if err != nil {
		return "", err
	}
	v, err := parseEval(out)
	if err != nil {
		return "", fmt.Errorf("prosodytest: eval %q: %w", chunk, err)
	}
	return v, nil
}

// parseEval extracts the value that Eval framed with markers from
// prosodyctl's standard output.
func parseEval(out string) (string, error) {
	_, rest, ok := strings.Cut(out, evalBegin)
	if !ok {
		return "", fmt.Errorf("no value in the console's answer %q", out)
	}
	v, _, ok := strings.Cut(rest, evalEnd)
	if !ok {
		return "", fmt.Errorf("truncated value in the console's answer %q", out)
	}
	return v, nil
}

// MutualSubscribe gives users a and b (localparts or bare JIDs on Domain)
// a mutual ("both") presence subscription, without asking either of them.
// It acts inside the running server, so its roster cache stays coherent;
// online sessions get a roster push but no presence. Call it before the
// users log in.
func (s *Server) MutualSubscribe(ctx context.Context, a, b string) error {
	a, b, err := testserver.SubscriptionPair("prosodytest", s.Domain, a, b)
	if err != nil {
		return err
	}
	// One line of Lua, evaluated in the server.
	lua := `local rm, um = require "core.rostermanager", require "core.usermanager"; ` +
		`local host = ` + luaQuote(s.Domain) + `; ` +
		`local function add(user, contact) ` +
		`if not um.user_exists(user, host) then error("no user " .. user .. "@" .. host) end; ` +
		`local roster, err = rm.load_roster(user, host); ` +
		`if not roster then error("load roster of " .. user .. ": " .. tostring(err)) end; ` +
		`local item = roster[contact] or { groups = {} }; ` +
		`item.subscription = "both"; item.ask = nil; roster[contact] = item; ` +
		`if roster[false] and roster[false].pending then roster[false].pending[contact] = nil end; ` +
		`local ok, err2 = rm.save_roster(user, host, roster); ` +
		`if not ok then error("save roster of " .. user .. ": " .. tostring(err2)) end; ` +
		`rm.roster_push(user, host, contact); end; ` +
		`add(` + luaQuote(a) + `, ` + luaQuote(b+"@"+s.Domain) + `); ` +
		`add(` + luaQuote(b) + `, ` + luaQuote(a+"@"+s.Domain) + `); ` +
		`return "subscribed"`
	out, err := s.Eval(ctx, lua)
	if err != nil {
		return fmt.Errorf("prosodytest: MutualSubscribe %s, %s: %w", a, b, err)
	}
	if out != "subscribed" {
		return fmt.Errorf("prosodytest: MutualSubscribe %s, %s: the server answered %q", a, b, out)
	}
	return nil
}
