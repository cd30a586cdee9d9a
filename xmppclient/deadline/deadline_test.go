package deadline

import (
	"net"
	"testing"
	"time"
)

func TestFreeze(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := Wrap(a)

	// Before Freeze a deadline in the past makes a read fail at once.
	if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read with a past deadline succeeded before Freeze")
	}

	c.Freeze()
	// After Freeze the same deadline is ignored and the read waits for data.
	if err := c.SetDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = b.Write([]byte{42}) }()
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil || buf[0] != 42 {
		t.Fatalf("read after Freeze: %v %v", buf, err)
	}
}
