package admin

import (
	"net/http"

	"gannet/engine/events"
)

// PathEvents shows the event sinks ([[event_sink]]; engine/events).
const PathEvents = "/api/admin/events/v1"

// Events is what the admin API needs of the event shipping
// (*events.Shipper).
type Events interface {
	Status() []events.SinkStatus
}

// EventsResponse is the answer of GET /api/admin/events/v1: each sink's
// backlog, counts since the start, last success and last error, in
// configuration order (empty without [[event_sink]]).
type EventsResponse struct {
	Sinks []events.SinkStatus `json:"sinks"`
}

// eventsStatus serves GET /api/admin/events/v1.
func (h *handler) eventsStatus(w http.ResponseWriter, _ *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "the event sinks are the operator's"); err != nil {
		return err
	}
	out := EventsResponse{Sinks: []events.SinkStatus{}}
	if h.opts.Events != nil {
		out.Sinks = h.opts.Events.Status()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
