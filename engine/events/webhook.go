package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The webhook request headers (docs/contract.md, "Event sinks").
const (
	HeaderSignature   = "X-Gannet-Signature"
	HeaderTimestamp   = "X-Gannet-Timestamp"
	HeaderIdempotency = "Idempotency-Key"
)

// maxResponse is how much of a webhook's answer is read (and discarded).
const maxResponse = 64 << 10

// webhook POSTs records as JSON: one record per request, or an array of
// up to max_batch with batch = true.
type webhook struct {
	opts   *SinkOptions
	now    func() time.Time
	client *http.Client
	buf    []byte
}

func newWebhook(o *SinkOptions, now func() time.Time) *webhook {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	// A batch is written in one or two system calls, not one per 4 KiB
	// (the default buffer).
	tr.WriteBufferSize = 256 << 10
	// No Accept-Encoding: the answer is read only to reuse the connection.
	tr.DisableCompression = true
	return &webhook{opts: o, now: now, client: &http.Client{
		Timeout:   o.Timeout,
		Transport: tr,
		// A redirect would send the records somewhere not configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// signature is the X-Gannet-Signature value: "v1=" and the hex HMAC-SHA256,
// keyed with the sink's secret, of the timestamp header's value, a ".",
// and the body.
func signature(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// body is the request body of b: the record, or an array of them.
func (w *webhook) body(b *batch) []byte {
	buf := w.buf[:0]
	if !w.opts.Batch {
		buf = append(buf, b.entries[0].json...)
	} else {
		buf = append(buf, '[')
		for i, e := range b.entries {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, e.json...)
		}
		buf = append(buf, ']')
	}
	w.buf = buf
	return buf
}

func (w *webhook) ship(ctx context.Context, b *batch) error {
	body := w.body(b)
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return &permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gannet-events/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderIdempotency, b.key)
	if w.opts.Secret != "" {
		req.Header.Set(HeaderSignature, signature([]byte(w.opts.Secret), ts, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	// Read a bounded part of the answer so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		return &permanentError{fmt.Errorf("webhook answered %s", resp.Status)}
	default:
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
}

func (w *webhook) close() { w.client.CloseIdleConnections() }
