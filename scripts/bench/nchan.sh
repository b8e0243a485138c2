#!/usr/bin/env bash
# Starts or stops nginx with the Nchan module on loopback, for `tickwire bench --target nchan`.
#
#   scripts/bench/nchan.sh start PORT WORKERS [REDIS_URL]   # prints the nginx process ids (comma-separated)
#   scripts/bench/nchan.sh restart PORT WORKERS [REDIS_URL] # fast stop (clients dropped at once), then start
#   scripts/bench/nchan.sh stop PORT                         # every nginx of this PORT's config, workers included
#
# Subscribers: ws://127.0.0.1:PORT/sub/CH1,CH2 (multiplexed); publishers: POST http://127.0.0.1:PORT/pub/CH.
# Needs Debian's nginx and libnginx-mod-nchan (apt-get install nginx libnginx-mod-nchan).
set -euo pipefail
action=$1
port=$2
dir=/tmp/tickwire-nchan-$port

# Every master of this config, not only the one in nginx.pid: an instance whose pid file was
# overwritten would otherwise keep serving the port (reuseport) into the next run.
masters() { pgrep -f "^nginx: master process nginx -c $dir/nginx.conf" || true; }
stop() {
  local pids children
  pids=$(masters)
  [ -z "$pids" ] && { rm -f "$dir/nginx.pid"; return; }
  children=$(for m in $pids; do pgrep -P "$m" || true; done)
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 50); do [ -z "$(masters)" ] && break; sleep 0.1; done
  kill -KILL $(masters) $children 2>/dev/null || true
  rm -f "$dir/nginx.pid"
}

case "$action" in
restart)
  stop
  shift
  exec "$0" start "$@"
  ;;
start)
  stop
  workers=${3:-2}
  redis=${4:-}
  mkdir -p "$dir"
  storage=""
  upstream=""
  if [ -n "$redis" ]; then
    upstream="upstream nchan_redis { nchan_redis_server ${redis}; }"
    storage="nchan_redis_pass nchan_redis;"
  fi
  cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
worker_processes $workers;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 19900; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  nchan_shared_memory_size 512m;
  $upstream
  server {
    listen 127.0.0.1:$port reuseport backlog=4096;
    location ~ ^/sub/(.+)\$ {
      nchan_subscriber websocket;
      nchan_channel_id \$1;
      nchan_channel_id_split_delimiter ",";
      nchan_subscriber_first_message newest;
      $storage
    }
    location ~ ^/pub/(\w+)\$ {
      nchan_publisher;
      nchan_channel_id \$1;
      nchan_message_buffer_length 5;
      nchan_message_timeout 120s;
      $storage
    }
  }
}
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
  for _ in $(seq 1 50); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
  master=$(cat "$dir/nginx.pid")
  sleep 0.5
  echo "$(echo "$master" $(pgrep -P "$master") | tr ' ' ',')"
  ;;
stop)
  stop
  ;;
*) echo "usage: $0 start|restart PORT WORKERS [REDIS_URL] | stop PORT" >&2; exit 2 ;;
esac
