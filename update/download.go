package update

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// Download tuning. A kit's link may be a weak mobile one: a stalled
// transfer is cut after stallTimeout and resumed, and up to maxRetries
// attempts in a row may fail before the job fails (an attempt that brings
// bytes resets the count).
const (
	stallTimeout = 60 * time.Second
	maxRetries   = 8
	retryFirst   = 500 * time.Millisecond
	retryMax     = 30 * time.Second
)

// newHTTPClient verifies the server with the system roots, or with
// caFile's certificates only when it is set. TLS 1.2 at least. Errors
// name the file; the caller adds the field.
func newHTTPClient(caFile string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := safefile.Read(caFile, safefile.Rules{Max: 1 << 20, Trusted: true})
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
			TLSClientConfig:       tc,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		// Presigned S3 URLs do not redirect; a redirect to http:// would
		// drop the server check, so only https is followed.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" || len(via) >= 5 {
				return fmt.Errorf("redirect to %s refused", redact(req.URL.String()))
			}
			return nil
		},
	}, nil
}

// permanentError ends the download: retrying cannot help.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// download brings url's bytes into part until it holds size bytes,
// resuming from what part already holds (a dropped connection, or a
// restart of the agent), never accepting more than size bytes. report is
// called with the bytes held at each tenth of size and after each
// attempt.
func download(ctx context.Context, client *http.Client, url string, size int64, part string, report func(have int64)) error {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	have := st.Size()
	if have > size {
		// Not ours to resume (the size cannot differ for one sha256);
		// start over.
		if err := f.Truncate(0); err != nil {
			return err
		}
		have = 0
	}
	wait := retryFirst
	for failures := 0; have < size; {
		got, err := fetch(ctx, client, url, f, have, size, report)
		if got > have {
			failures, wait = 0, retryFirst
		}
		have = got
		if report != nil {
			report(have)
		}
		if err == nil {
			continue
		}
		var perm permanentError
		if errors.As(err, &perm) || ctx.Err() != nil {
			return err
		}
		if failures++; failures >= maxRetries {
			return fmt.Errorf("giving up after %d attempts without progress: %w", failures, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return nil
}

// fetch makes one request for the bytes from have on and appends them to
// f; it returns how many bytes f holds afterwards.
func fetch(ctx context.Context, client *http.Client, url string, f *os.File, have, size int64, report func(int64)) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return have, permanentError{err}
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL's query (a presigned URL's signature) is a
		// credential: it goes into no error or log.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			ue.URL = redact(ue.URL)
		}
		// A server that fails verification will fail it again.
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) {
			return have, permanentError{err}
		}
		return have, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, total, err := contentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return have, permanentError{err}
		}
		if total > size {
			return have, permanentError{fmt.Errorf("%w: the server has %d bytes, the job says %d", ErrTooLarge, total, size)}
		}
		if start != have {
			return have, fmt.Errorf("server resumed at byte %d, asked for %d", start, have)
		}
	case http.StatusOK:
		// No range support (or none asked for): from the start.
		if resp.ContentLength > size {
			return have, permanentError{fmt.Errorf("%w: the server announces %d bytes, the job says %d", ErrTooLarge, resp.ContentLength, size)}
		}
		if err := f.Truncate(0); err != nil {
			return have, permanentError{err}
		}
		have = 0
	case http.StatusRequestedRangeNotSatisfiable:
		// The object is shorter than what we hold: start over once.
		if err := f.Truncate(0); err != nil {
			return have, permanentError{err}
		}
		return 0, fmt.Errorf("%w: %s for bytes from %d", ErrHTTP, resp.Status, have)
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInternalServerError:
		return have, fmt.Errorf("%w: %s", ErrHTTP, resp.Status)
	default:
		// 403 from S3 is an expired or wrong presigned URL: retrying
		// cannot fix it.
		return have, permanentError{fmt.Errorf("%w: %s", ErrHTTP, resp.Status)}
	}
	// A stalled body (the link died without a reset) is cut after
	// stallTimeout without a byte, then resumed.
	stall := time.AfterFunc(stallTimeout, cancel)
	defer stall.Stop()
	buf := make([]byte, 32<<10)
	// Progress every tenth of the file: a few reports per update, not
	// one per read.
	step := max(size/10, 1)
	next := (have/step + 1) * step
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stall.Reset(stallTimeout)
			if have+int64(n) > size {
				return have, permanentError{fmt.Errorf("%w: the server sent more than %d bytes", ErrTooLarge, size)}
			}
			if _, err := f.WriteAt(buf[:n], have); err != nil {
				return have, permanentError{err}
			}
			have += int64(n)
			if have >= next && have < size && report != nil {
				report(have)
				next = (have/step + 1) * step
			}
		}
		if rerr == io.EOF {
			if have < size {
				// A clean end (a cut connection is
				// ErrUnexpectedEOF): the server has fewer bytes
				// than the job says.
				return have, permanentError{fmt.Errorf("%w: the server sent %d bytes, the job says %d", ErrSize, have, size)}
			}
			return have, nil
		}
		if rerr != nil {
			return have, rerr
		}
	}
}

// contentRange parses "bytes START-END/TOTAL" (TOTAL may be "*").
func contentRange(h string) (start, total int64, err error) {
	bad := fmt.Errorf("%w: bad Content-Range %q", ErrHTTP, h)
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, bad
	}
	s, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, bad
	}
	if start, err = strconv.ParseInt(s, 10, 64); err != nil || start < 0 {
		return 0, 0, bad
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, bad
		}
	}
	return start, total, nil
}
