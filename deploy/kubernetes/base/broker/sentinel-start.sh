#!/bin/sh
# Sentinel rewrites its config file, so it gets a writable copy (in an emptyDir).
set -eu
ns=message-broker
cat >/sentinel/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $(hostname).redis-sentinel-nodes.$ns.svc.cluster.local
sentinel monitor telemetry redis-0.redis-nodes.$ns.svc.cluster.local 6379 2
sentinel down-after-milliseconds telemetry 5000
sentinel failover-timeout telemetry 60000
sentinel parallel-syncs telemetry 1
CONF
exec redis-server /sentinel/sentinel.conf --sentinel
