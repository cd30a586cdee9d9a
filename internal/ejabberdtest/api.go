package ejabberdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testserver"
)

// apiTimeout bounds one HTTP API call on top of its context.
const apiTimeout = 20 * time.Second

// API calls one ejabberd command through mod_http_api (loopback only) and
// returns the response body. args are the command's named arguments.
func (s *Server) API(ctx context.Context, command string, args map[string]any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	body, err := json.Marshal(args)
	if err != nil {
		return "", fmt.Errorf("ejabberdtest: %s: %w", command, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.APIAddr+"/api/"+command, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("ejabberdtest: %s: %w", command, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ejabberdtest: %s: %w", command, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("ejabberdtest: %s: %w", command, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(out), fmt.Errorf("ejabberdtest: %s: HTTP %s: %s", command, resp.Status, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// AddUser registers user (a localpart) on Domain with password. An
// existing account keeps its password and is an error.
func (s *Server) AddUser(ctx context.Context, user, password string) error {
	if err := testserver.CheckLocalpart("ejabberdtest", user); err != nil {
		return err
	}
	if password == "" {
		return errors.New("ejabberdtest: empty password")
	}
	out, err := s.API(ctx, "register", map[string]any{"user": user, "host": s.Domain, "password": password})
	if err != nil {
		return fmt.Errorf("ejabberdtest: register %s@%s: %w", user, s.Domain, err)
	}
	if !strings.Contains(out, "successfully registered") {
		return fmt.Errorf("ejabberdtest: register %s@%s: %s", user, s.Domain, out)
	}
	return nil
}

// NewUser registers a new account whose localpart starts with prefix and
// is unique on this server (or cluster), with a random password. It fails
// t on error.
func (s *Server) NewUser(t testing.TB, prefix string) (jid, password string) {
	t.Helper()
	return testserver.NewUser(t, "ejabberdtest", s.Domain, prefix, s.userSeq, s.AddUser)
}

// MutualSubscribe gives users a and b (localparts or bare JIDs on Domain)
// a mutual ("both") presence subscription, without asking either of them
// (add_rosteritem of mod_admin_extra). Call it before the users log in.
func (s *Server) MutualSubscribe(ctx context.Context, a, b string) error {
	a, b, err := testserver.SubscriptionPair("ejabberdtest", s.Domain, a, b)
	if err != nil {
		return err
	}
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		// ejabberd 23.01's add_rosteritem takes one group.
		out, err := s.API(ctx, "add_rosteritem", map[string]any{
			"localuser": pair[0], "localhost": s.Domain, "user": pair[1], "host": s.Domain,
			"nick": pair[1], "group": "Test", "subs": "both",
		})
		if err != nil {
			return fmt.Errorf("ejabberdtest: MutualSubscribe %s, %s: %w", a, b, err)
		}
		if strings.TrimSpace(out) != "0" {
			return fmt.Errorf("ejabberdtest: MutualSubscribe %s, %s: add_rosteritem answered %s", a, b, out)
		}
	}
	return nil
}
