package agent

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

var prosody prosodytest.Lazy

func TestMain(m *testing.M) {
	code := prosodytest.Main(m, &prosody)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
