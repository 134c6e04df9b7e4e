package engine

import (
	"net/http"

	"gannet/engine/admin"
)

// adminHandler returns the admin API (engine/admin) over this engine's
// delivery loop and spool, mounted by every HTTP listener that serves
// "admin": queue summary, message inspection, bounces and suspensions.
func (e *Engine) adminHandler() http.Handler {
	return admin.New(admin.Options{
		Loop:       e.delivery,
		Spool:      e.spool,
		Quarantine: e.spool,
		TenantRate: e.tenantRate,
		Now:        e.now,
		Logger:     e.log.With("part", "admin"),
	})
}
