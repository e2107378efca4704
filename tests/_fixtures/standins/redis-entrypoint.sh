#!/bin/sh
# TEST INFRASTRUCTURE: redis:7 is built with protected mode off (unneeded in a container network);
# Debian's redis-server has it on, so the stand-in turns it off first (a config file stays first).
set -eu
if [ "${1:-}" = "redis-server" ]; then
  shift
  case "${1:-}" in
    -* | "") exec redis-server --protected-mode no "$@" ;;
    *) conf=$1 && shift && exec redis-server "$conf" --protected-mode no "$@" ;;
  esac
fi
exec "$@"
