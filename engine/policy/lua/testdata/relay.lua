-- relay.lua: an internal relay for application servers

-- the operator's own lookups (in a real deployment: a file, a database, a service)
local TENANT_LIMITS = { acme = 600, globex = 120 }
local TENANT_DKIM = {
  acme = { domain = "acme.example", selector = "s1", key_file = "keys/s1._domainkey.acme.example.pem" },
}
local API_KEYS = { ["key-acme-1"] = "acme" }

function get_tenant_rate_limit(tenant) return TENANT_LIMITS[tenant] or 60 end
function get_tenant_dkim(tenant) return TENANT_DKIM[tenant] end
function validate_api_key(token) return API_KEYS[token] ~= nil end
function is_bulk_campaign(headers) return headers["X-Campaign"] ~= nil end

kumo.start_smtp_listener {
  listen = "127.0.0.1:2525",
  name = "relay-in",
  relay_hosts = { "127.0.0.0/8" },
  auth_require_tls = true,
}

kumo.start_smtp_listener {
  listen = "127.0.0.1:2587",
  name = "submission",
  relay_hosts = {},
  auth_require_tls = true,
  auth_mechanisms = { "PLAIN", "LOGIN", "CRAM-MD5" },
}

kumo.start_http_listener {
  listen = "127.0.0.1:8000",
  trusted_hosts = { "127.0.0.1" },
}

kumo.configure_dkim_signing {
  domain = "example.com",
  selector = "mail",
  key_file = "keys/mail._domainkey.example.com.pem",
  headers = { "From", "To", "Subject", "Date", "Message-ID" },
}

kumo.configure_tls { min_tls_version = "1.3" }

kumo.configure_delivery {
  threads = 4,
  max_connections_per_domain = 10,
  max_message_rate = 1000, -- per minute per domain
}

kumo.configure_queue {
  max_queue_depth = 100000,
  retry_interval = "5m",
  max_retry_age = "72h",
  dead_letter_after = "7d",
}

-- per tenant: rate limit and DKIM key
kumo.on("smtp_server_greeting", function(domain, meta)
  local tenant = meta.tenant
  if tenant then
    kumo.limit_sending(tenant, get_tenant_rate_limit(tenant), { per = "minute" })
    local dkim = get_tenant_dkim(tenant)
    if dkim then
      kumo.sign_dkim(dkim.domain, dkim.selector, dkim.key_file)
    end
  end
end)

-- transactional mail first
kumo.on("smtp_message_received", function(domain, meta)
  local headers = meta.headers or {}
  if headers["X-Type"] == "transactional" then
    kumo.set_queue_priority("high")
  end
end)

-- campaign counters
kumo.on("smtp_message_received", function(domain, meta)
  local campaign = (meta.headers or {})["X-Campaign"]
  if campaign then
    increment_campaign_metric(campaign, "queued")
  end
end)

-- RFC 8058 one-click unsubscribe on bulk mail
kumo.on("smtp_message_received", function(domain, meta)
  if is_bulk_campaign(meta.headers or {}) then
    kumo.add_header("List-Unsubscribe", "<mailto:unsubscribe@example.com?subject=unsubscribe>")
    kumo.add_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
  end
end)

-- back off by 30% when a provider throttles
kumo.on("smtp_delivery_result", function(result, meta)
  if result.code == 421 or result.code == 429 then
    adjust_domain_rate(meta.domain, -0.3)
    log_warn("Throttled by " .. meta.domain .. ", reducing rate")
  end
end)

-- SMTP AUTH accounts (WordPress and other applications on 587)
local USERS = { wordpress = { password = "wp-secret", tenant = "acme" } }
kumo.on("smtp_server_auth", function(user, password, meta)
  local u = USERS[user]
  if u and u.password == password then
    return { ok = true, tenant = u.tenant }
  end
  return false
end)

-- API keys for the HTTP API
kumo.on("http_request", function(request)
  local token = (request.headers["Authorization"] or ""):gsub("Bearer ", "")
  if not validate_api_key(token) then
    return { status = 401, body = "Unauthorized" }
  end
end)
