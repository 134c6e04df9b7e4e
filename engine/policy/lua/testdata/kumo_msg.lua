-- A KumoMTA-style policy: the message object, queue and egress path hooks.
local kumo = require 'kumo'

local signer_for = kumo.memoize(function(domain)
  return { domain = domain, selector = 's1', file = 'keys/' .. domain .. '.pem' }
end, { name = 'signers', ttl = '5m', capacity = 100 })

kumo.on('smtp_server_message_received', function(msg)
  msg:set_meta('tenant', 'globex')
  msg:set_meta('campaign', msg:get_first_named_header_value('x-campaign') or 'none')
  msg:set_meta('routing_domain', 'example.net')
  assert(msg:get_meta('routing_domain') == 'example.net')
  assert(msg:get_meta('tenant') == 'globex')
  assert(msg:get_meta('nothing') == nil)
  local from = msg:from_header()
  local s = signer_for(from.domain)
  local signer = kumo.dkim.rsa_sha256_signer {
    domain = s.domain,
    selector = s.selector,
    headers = { 'From', 'To', 'Subject' },
    key = { key_file = s.file },
  }
  msg:dkim_sign(signer)
  msg:append_header('X-Relay-Sender', tostring(msg:sender()))
  msg:prepend_header('X-Relay-Domain', msg:recipient().domain)
  msg:remove_all_named_headers('X-Secret')
  assert(msg:get_data():find('Subject: hello', 1, true))
end)

kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  increment_campaign_metric('queue-config', domain)
  if domain == 'slow.example' then
    return kumo.make_queue_config {
      retry_interval = '10m',
      max_retry_interval = 3600,
      max_age = '48h',
      egress_pool = tenant .. '-pool',
    }
  end
end)

kumo.on('get_egress_path_config', function(domain, egress_source, site_name)
  if domain == 'big.example' then
    return kumo.make_egress_path {
      connection_limit = 2,
      max_message_rate = '100/s',
      max_deliveries_per_connection = 50,
      enable_tls = 'Required',
      smtp_port = 2525,
    }
  elseif domain == 'small.example' then
    return kumo.make_egress_path { max_message_rate = 600 } -- per minute
  end
end)
