package publisher

import (
	"time"

	"github.com/kitd-dev/kitd/telemetry"
)

// offlinePayload is both the Last Will and the message sent on a clean
// shutdown. It is shaped like a shadow update so one AWS IoT rule can
// republish it to $aws/things/<id>/shadow/update (AWS ignores a Will on
// $aws/ topics).
var offlinePayload = []byte(`{"state":{"reported":{"connected":false}}}`)

// onlinePayload is published on every connect.
func onlinePayload(now time.Time) []byte {
	b := make([]byte, 0, 80)
	b = append(b, `{"state":{"reported":{"connected":true}},"ts":"`...)
	b = now.UTC().AppendFormat(b, telemetry.TimeLayout)
	return append(b, `"}`...)
}
