package ejabberdtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Cluster is two ejabberd nodes joined into one Erlang (Mnesia) cluster
// serving the domain: an account, its roster and its presence are known
// on both, and a client of one node reaches a client of the other.
type Cluster struct {
	// Nodes are node 1 and node 2; node 2 joined node 1.
	Nodes []*Server

	run *run

	mu     sync.Mutex
	closed bool
}

// StartCluster starts two nodes with one epmd and one cookie, joins node 2
// to node 1 (ejabberdctl join_cluster, which wipes node 2's database and
// copies node 1's), then registers Options.Users. The context bounds only
// the start-up.
func StartCluster(ctx context.Context, opts Options) (*Cluster, error) {
	opts, progs, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	// Two nodes and a join: twice the start-up of one node.
	ctx, cancel := context.WithTimeout(ctx, 2*opts.StartTimeout)
	defer cancel()
	r, err := newRun(ctx, opts, progs)
	if err != nil {
		return nil, err
	}
	c := &Cluster{run: r}
	cookie, seq := newCookie(), new(atomic.Uint64)
	nodes := make([]*Server, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			nodes[i], errs[i] = startNode(ctx, r, i, cookie, seq)
		})
	}
	wg.Wait()
	for _, n := range nodes {
		if n != nil {
			c.Nodes = append(c.Nodes, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if err := c.join(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if err := c.Nodes[0].setupUsers(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// join makes node 2 a member of node 1's cluster and waits until it runs
// again and both list each other.
func (c *Cluster) join(ctx context.Context) error {
	n1, n2 := c.Nodes[0], c.Nodes[1]
	n2.mu.Lock()
	p := n2.proc
	n2.mu.Unlock()
	if _, err := n2.Ctl(ctx, "join_cluster", n1.Node); err != nil {
		return fmt.Errorf("ejabberdtest: join %s to %s: %w\n%s", n2.Node, n1.Node, err, n2.diagnostics())
	}
	// join_cluster restarts ejabberd inside node 2's VM.
	if err := n2.waitReady(ctx, p, 0); err != nil {
		return fmt.Errorf("ejabberdtest: %s after join_cluster: %w\n%s", n2.Node, err, n2.diagnostics())
	}
	for _, n := range c.Nodes {
		out, err := n.API(ctx, "list_cluster", map[string]any{})
		if err != nil {
			return err
		}
		if !strings.Contains(out, n1.Node) || !strings.Contains(out, n2.Node) {
			return fmt.Errorf("ejabberdtest: %s lists the cluster as %s", n.Node, out)
		}
	}
	return nil
}

// Stop stops both nodes (node 2 first) and their epmd, and removes the
// directory unless Options.Keep or EnvKeep is set. It is idempotent.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for i := len(c.Nodes) - 1; i >= 0; i-- {
		errs = append(errs, c.Nodes[i].Stop())
	}
	errs = append(errs, c.run.close())
	return errors.Join(errs...)
}

// NewUser registers a new account on the cluster (through node 1).
func (c *Cluster) NewUser(t testing.TB, prefix string) (jid, password string) {
	t.Helper()
	return c.Nodes[0].NewUser(t, prefix)
}

// MutualSubscribe is Server.MutualSubscribe on the cluster.
func (c *Cluster) MutualSubscribe(ctx context.Context, a, b string) error {
	return c.Nodes[0].MutualSubscribe(ctx, a, b)
}

// WaitSession waits until every running node knows the session of full
// (a full JID). Mnesia replicates ejabberd's session table to the other
// node asynchronously: for a moment after a login, a stanza routed through
// the other node to the new full JID gets "User session not found"
// (ejabberd 23.01).
func (c *Cluster) WaitSession(ctx context.Context, full string) error {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		for {
			out, err := n.API(ctx, "connected_users", map[string]any{})
			if err == nil && strings.Contains(out, `"`+full+`"`) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("ejabberdtest: %s does not know the session of %s: %w (last answer %q, %v)", n.Node, full, ctx.Err(), out, err)
			case <-time.After(probeInterval):
			}
		}
	}
	return nil
}

// WaitAvailable waits until every running node knows the session of full
// (a full JID) as available, i.e. with the priority of its initial
// presence: a message to the bare JID routed through any node then reaches
// it (before that, ejabberd routes it as to an offline user).
func (c *Cluster) WaitAvailable(ctx context.Context, full string) error {
	user, rest, _ := strings.Cut(full, "@")
	_, resource, _ := strings.Cut(rest, "/")
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		for {
			out, err := n.API(ctx, "user_sessions_info", map[string]any{"user": user, "host": n.Domain})
			if err == nil && availableIn(out, resource) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("ejabberdtest: %s does not know %s as available: %w (last answer %q, %v)", n.Node, full, ctx.Err(), out, err)
			case <-time.After(probeInterval):
			}
		}
	}
	return nil
}

// availableIn reports whether the answer of user_sessions_info lists
// resource with a numeric priority.
func availableIn(answer, resource string) bool {
	var sessions []struct {
		Resource string `json:"resource"`
		Priority any    `json:"priority"`
	}
	if json.Unmarshal([]byte(answer), &sessions) != nil {
		return false
	}
	for _, s := range sessions {
		if s.Resource != resource {
			continue
		}
		switch p := s.Priority.(type) {
		case float64:
			return true
		case string:
			_, err := strconv.Atoi(p)
			return err == nil
		}
	}
	return false
}
