package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// errorBody is every refusal's answer: {"error": "…"}.
type errorBody struct {
	Error string `json:"error"`
}

// WriteJSON writes v as the JSON answer with status: the one JSON writer
// of the HTTP API, also used by the admin handler.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers status with {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.errMsg = msg
	}
	WriteJSON(w, status, errorBody{Error: msg})
}

// apiError is a refusal with its HTTP status; handlers return it and the
// server writes it as JSON.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, msg string) *apiError { return &apiError{status: status, msg: msg} }

// statusWriter remembers whether the answer has started, so that a
// recovered panic can still be answered with JSON.
type statusWriter struct {
	http.ResponseWriter
	wrote  bool
	status int    // the status written; 0 before
	errMsg string // the {"error"} of a refusal written by writeError
}

func (s *statusWriter) WriteHeader(code int) {
	s.wrote = true
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (admin) flush through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		s.wrote = true
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// retryAfterQueueFull is the Retry-After of a 503 (seconds).
const retryAfterQueueFull = "30"

// writeAPIError writes a refusal; a 503 carries Retry-After.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfterQueueFull)
	}
	writeError(w, e.status, e.msg)
}
