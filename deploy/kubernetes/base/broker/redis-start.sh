#!/bin/sh
# Starts one Redis of the StatefulSet. The Sentinels know the current master: follow it. When no
# Sentinel answers (first start of the set), redis-0 is the master and the others follow it.
set -eu
ns=message-broker
me="$(hostname).redis-nodes.$ns.svc.cluster.local"
master=$(redis-cli -h redis-sentinel.$ns.svc.cluster.local -p 26379 \
  sentinel get-master-addr-by-name telemetry 2>/dev/null | head -1 || true)
if [ -z "$master" ]; then
  master="redis-0.redis-nodes.$ns.svc.cluster.local"
fi
set -- redis-server --dir /data --appendonly yes --appendfsync everysec \
  --maxmemory-policy noeviction --protected-mode no \
  --replica-announce-ip "$me" --replica-announce-port 6379
if [ "$master" != "$me" ]; then
  set -- "$@" --replicaof "$master" 6379
fi
exec "$@"
