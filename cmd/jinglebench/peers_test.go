package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestStanzaBaselineRetries: a StanzaJS baseline (a paired round's, or the
// peers/stanza-to-stanza case's) that StanzaJS fails is tried again with a
// fresh resource, each failure is in the case's note, and after
// stanzaRetries more failures the round fails.
func TestStanzaBaselineRetries(t *testing.T) {
	ctx := context.Background()
	var c Case
	var used []string
	secs, err := stanzaBaseline(ctx, 2, &c, func(res string) (float64, error) {
		used = append(used, res)
		if len(used) == 1 {
			return 0, errors.New("media-error")
		}
		return 1.5, nil
	})
	if err != nil || secs != 1.5 {
		t.Fatalf("stanzaBaseline = %v, %v; want 1.5, nil after a retry", secs, err)
	}
	if len(used) != 2 || used[0] == used[1] {
		t.Errorf("resources %q, want two different ones", used)
	}
	if !strings.Contains(c.Note, "round 2") || !strings.Contains(c.Note, "media-error") {
		t.Errorf("note %q does not record the failed round", c.Note)
	}

	// The single peers/stanza-to-stanza case (round 0).
	c, used = Case{}, nil
	secs, err = stanzaBaseline(ctx, 0, &c, func(res string) (float64, error) {
		used = append(used, res)
		if len(used) == 1 {
			return 0, errors.New("media-error")
		}
		return 2, nil
	})
	if err != nil || secs != 2 || len(used) != 2 || used[0] == used[1] {
		t.Errorf("round 0: %v, %v with resources %q; want 2, nil after a retry with a fresh resource", secs, err, used)
	}
	if !strings.Contains(c.Note, "StanzaJS→StanzaJS failed (media-error), retried") || strings.Contains(c.Note, "round") {
		t.Errorf("round 0: note %q", c.Note)
	}

	c, used = Case{}, nil
	_, err = stanzaBaseline(ctx, 1, &c, func(res string) (float64, error) {
		used = append(used, res)
		return 0, errors.New("media-error")
	})
	if err == nil || len(used) != 1+stanzaRetries {
		t.Errorf("always failing: err %v after %d tries, want an error after %d", err, len(used), 1+stanzaRetries)
	}
}
