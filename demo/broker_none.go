//go:build kitd_nodemo

package demo

import (
	"log/slog"

	"github.com/kitd-dev/kitd/internal/pki"
)

// haveBroker says this build has no embedded broker: it was built with
// -tags kitd_nodemo, as the release binaries are, so that `kitd run`
// carries none of the broker's code (broker.go). Run returns ErrNotBuilt.
const haveBroker = false

type broker struct{}

func startBroker(*pki.CA, pki.Pair, *slog.Logger) (*broker, error) { return nil, ErrNotBuilt }

func (*broker) Addr() string                                           { return "" }
func (*broker) Watch(string, func(topic string, payload []byte)) error { return ErrNotBuilt }
func (*broker) Unwatch(string) error                                   { return ErrNotBuilt }
func (*broker) Close() error                                           { return nil }
