package blast

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// httpEndpoint returns the URL to POST to: the mode's path added to a base
// URL, or the URL itself when it already has a path.
func httpEndpoint(base, mode string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("blast: bad http url %q", base)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/message"
		if mode == "inject" {
			u.Path = "/api/inject/v1"
		}
	}
	return u.String(), nil
}

// messageRequest is the body of POST /v1/message (contract.md).
type messageRequest struct {
	From    string            `json:"from"`
	To      []string          `json:"to"`
	Subject string            `json:"subject"`
	Headers map[string]string `json:"headers"`
	Text    string            `json:"text"`
}

// injectRequest is the body of POST /api/inject/v1 (the KumoMTA schema).
type injectRequest struct {
	EnvelopeSender string            `json:"envelope_sender"`
	Recipients     []injectRecipient `json:"recipients"`
	Content        string            `json:"content"`
}

type injectRecipient struct {
	Email string `json:"email"`
}

// httpReply holds the fields of either answer that blast uses.
type httpReply struct {
	ID           string `json:"id"`
	Recipients   int    `json:"recipients"`
	SuccessCount *int   `json:"success_count"`
	FailCount    int    `json:"fail_count"`
}

func (r *run) httpWorker(ctx context.Context, st *workerStats, rng *rand.Rand) {
	endpoint, err := httpEndpoint(r.cfg.HTTPURL, r.cfg.HTTPMode)
	if err != nil {
		r.abort(err)
		return
	}
	// One client per worker keeps one connection per worker, like SMTP mode.
	hc := &http.Client{
		Timeout:   r.cfg.Timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true},
	}
	defer hc.CloseIdleConnections()
	var m message
	var buf bytes.Buffer
	for {
		seq, ok := r.claim(ctx)
		if !ok {
			return
		}
		r.gen.next(&m, seq, rng, time.Now())
		buf.Reset()
		if r.cfg.HTTPMode == "inject" {
			req := injectRequest{EnvelopeSender: r.cfg.From, Content: string(m.header) + string(m.body.plain)}
			for _, rc := range m.rcpts {
				req.Recipients = append(req.Recipients, injectRecipient{rc})
			}
			json.NewEncoder(&buf).Encode(req)
		} else {
			headers := map[string]string{"X-Blast-Id": m.blastID, "Message-ID": "<" + m.blastID + "@blast.example.test>"}
			for _, x := range r.cfg.Headers {
				name, value, _ := strings.Cut(x, ":")
				headers[name] = strings.TrimSpace(value)
			}
			json.NewEncoder(&buf).Encode(messageRequest{
				From:    r.cfg.From,
				To:      m.rcpts,
				Subject: "smtpblast " + m.blastID,
				Headers: headers,
				Text:    string(m.body.plain),
			})
		}
		t0 := time.Now()
		rep, status, err := post(ctx, hc, endpoint, buf.Bytes())
		if status > 0 && status < 600 {
			st.codes[status]++
		}
		if err != nil {
			st.connErrors++
			r.noteError(err)
			r.done(st, &m, false, "")
			if status == 0 && !r.connOK.Load() {
				r.abort(fmt.Errorf("blast: cannot reach %s: %w", endpoint, err))
				return
			}
			continue
		}
		r.connOK.Store(true)
		st.hist.record(time.Since(t0))
		acked := status/100 == 2
		switch {
		case rep.SuccessCount != nil:
			st.rcptOK += uint64(*rep.SuccessCount)
			st.rcptFail += uint64(rep.FailCount)
			acked = acked && *rep.SuccessCount > 0
		case acked:
			st.rcptOK += uint64(len(m.rcpts))
		default:
			st.rcptFail += uint64(len(m.rcpts))
		}
		if !acked {
			r.noteError(fmt.Errorf("http %d", status))
		}
		r.done(st, &m, acked, rep.ID)
	}
}

// post sends one JSON request; err is set for transport errors and for
// non-2xx answers.
func post(ctx context.Context, hc *http.Client, endpoint string, body []byte) (httpReply, int, error) {
	var rep httpReply
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return rep, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return rep, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return rep, resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return rep, resp.StatusCode, fmt.Errorf("http %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return rep, resp.StatusCode, fmt.Errorf("http %d: bad JSON answer: %w", resp.StatusCode, err)
	}
	return rep, resp.StatusCode, nil
}
