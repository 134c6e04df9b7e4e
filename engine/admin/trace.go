package admin

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"gannet/engine/trace"
)

// Paths of the trace streams and the log level.
const (
	PathTraceServer = "/api/admin/trace/v1/server"
	PathTraceClient = "/api/admin/trace/v1/client"
	PathLogLevel    = "/api/admin/log-level/v1"
)

// traceHeartbeat is how often an idle trace stream gets an empty line, so
// that a reader (or a proxy) sees the stream alive and a gone reader is
// noticed.
const traceHeartbeat = 15 * time.Second

// traceStream serves GET /api/admin/trace/v1/server and …/client: the live
// SMTP conversations of the sessions the query matches, as NDJSON (one
// trace.Event per line, Content-Type application/x-ndjson), flushed as
// they come, until the caller goes away or the server stops. Query:
// server side peer=CIDR (or an address) and listener=NAME; client side
// domain=D and site=S (a substring of the site name). Operators only:
// a trace shows every tenant's sessions.
func (h *handler) traceStream(side trace.Side) func(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	return func(w http.ResponseWriter, r *http.Request, c caller) *apiError {
		if err := operatorOnly(c, "traces show every tenant's sessions"); err != nil {
			return err
		}
		hub := h.opts.Trace
		if hub == nil {
			return fail(http.StatusNotFound, "traces are not available")
		}
		q := r.URL.Query()
		f := trace.Filter{Side: side}
		switch side {
		case trace.Server:
			if p := q.Get("peer"); p != "" {
				pfx, err := parsePrefix(p)
				if err != nil {
					return fail(http.StatusBadRequest, "peer: %q is not an address or a CIDR prefix", p)
				}
				f.Peer = pfx
			}
			f.Listener = q.Get("listener")
		case trace.Client:
			f.Domain = strings.TrimSuffix(q.Get("domain"), ".")
			f.Site = q.Get("site")
		}
		rc := http.NewResponseController(w)
		// A trace runs until interrupted: the server's write timeout
		// must not end it (and the read deadline goes too: nothing more
		// is read from the caller).
		_ = rc.SetWriteDeadline(time.Time{})
		_ = rc.SetReadDeadline(time.Time{})
		sub := hub.Subscribe(f, 0)
		defer sub.Close()
		h.log.Info("trace started", "side", side, "by", c.who, "query", r.URL.RawQuery)
		defer h.log.Info("trace ended", "side", side, "by", c.who)
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if err := rc.Flush(); err != nil {
			return nil
		}
		enc := json.NewEncoder(w)
		tick := time.NewTicker(traceHeartbeat)
		defer tick.Stop()
		for {
			select {
			case ev := <-sub.Events():
				if enc.Encode(&ev) != nil {
					return nil
				}
				// Write what else is waiting before flushing.
			drain:
				for n := 0; n < 256; n++ {
					select {
					case ev = <-sub.Events():
						if enc.Encode(&ev) != nil {
							return nil
						}
					default:
						break drain
					}
				}
			case <-tick.C:
				if d := sub.Dropped(); d > 0 {
					ev := trace.Event{Time: time.Now(), Side: side, Kind: trace.Dropped, Dropped: d}
					if enc.Encode(&ev) != nil {
						return nil
					}
				} else if _, err := w.Write([]byte("\n")); err != nil {
					return nil
				}
			case <-r.Context().Done():
				return nil
			case <-hub.Done():
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		}
	}
}

// parsePrefix reads a CIDR prefix or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// LogLevelRequest is the body of POST /api/admin/log-level/v1.
type LogLevelRequest struct {
	Level string `json:"level"` // debug, info, warn or error
}

// LogLevelResponse answers GET and POST /api/admin/log-level/v1.
type LogLevelResponse struct {
	Level string `json:"level"`
}

// logLevel serves GET /api/admin/log-level/v1: the operational log's level.
func (h *handler) logLevel(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if h.opts.LogLevel == nil {
		return fail(http.StatusNotFound, "the log level is not available")
	}
	writeJSON(w, http.StatusOK, LogLevelResponse{Level: h.opts.LogLevel()})
	return nil
}

// setLogLevel serves POST /api/admin/log-level/v1 {"level": "debug"}: the
// level until the next reload, which applies [log] level again.
func (h *handler) setLogLevel(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "the log level is the operator's"); err != nil {
		return err
	}
	if h.opts.SetLogLevel == nil {
		return fail(http.StatusNotFound, "the log level is not available")
	}
	var req LogLevelRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	level, err := h.opts.SetLogLevel(req.Level)
	if err != nil {
		return fail(http.StatusBadRequest, "%v", err)
	}
	h.log.Info("log level set", "level", level, "by", c.who)
	writeJSON(w, http.StatusOK, LogLevelResponse{Level: level})
	return nil
}
