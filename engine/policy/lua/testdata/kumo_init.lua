-- A KumoMTA-style init.lua: the configuration inside the init event.
local kumo = require 'kumo'

kumo.on('init', function()
  for _, port in ipairs { 2525, 2526 } do
    kumo.start_esmtp_listener {
      listen = '127.0.0.1:' .. tostring(port),
      hostname = 'mta.example.test',
      relay_hosts = { '127.0.0.1', '10.0.0.0/8' },
    }
  end
  kumo.start_http_listener {
    listen = '127.0.0.1:8000',
    trusted_hosts = { '127.0.0.1', '::1' },
  }
  kumo.define_spool { name = 'data', path = '/var/spool/gannet-test/data', kind = 'RocksDB' }
  kumo.define_spool { name = 'meta', path = '/var/spool/gannet-test/meta', kind = 'RocksDB' }
  kumo.configure_local_logs { log_dir = '/var/log/gannet-test' }
end)

kumo.on('smtp_server_message_received', function(msg)
  msg:set_meta('queue', 'null')
end)
