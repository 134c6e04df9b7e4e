package engine

import (
	"encoding/json"
	"net/http"
)

// adminHandler serves /api/admin/…. For now: the queue summary.
func (e *Engine) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/admin/queue-summary/v1", func(w http.ResponseWriter, r *http.Request) {
		s, rd := e.delivery.QueueDepth()
		writeJSON(w, http.StatusOK, map[string]any{
			"messages":  e.delivery.Messages(),
			"scheduled": s,
			"ready":     rd,
		})
	})
	mux.HandleFunc("/api/admin/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such admin endpoint"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
