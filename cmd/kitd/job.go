package main

import (
	"encoding/json"
	"fmt"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// maxJobDocument is AWS IoT's limit on a job document.
const maxJobDocument = 32 << 10

// readJobFile reads `kitd demo --job FILE`: a JSON object of at most
// 32 KB, as create-job takes. "" is no job.
func readJobFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := safefile.Read(path, safefile.Rules{Max: maxJobDocument})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s: not a JSON object (a job document such as {\"operation\":\"kitd.read-now\"})", path)
	}
	return b, nil
}
