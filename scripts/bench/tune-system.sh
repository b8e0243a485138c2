#!/usr/bin/env bash
# Prepares this machine for 100k loopback connections and says what it set.
# Needs root (sysctl -w). The per-process open-files hard limit is not raised here:
# on these machines it is 20000 and cannot be (see BENCHMARKS.md); on a real host use
# LimitNOFILE= in the systemd unit or `ulimit -n` before starting tickwire.
set -u
set_sysctl() {
  local key=$1 value=$2 before
  before=$(sysctl -n "$key" 2>/dev/null | tr '\t' ' ')
  if sysctl -qw "$key=$value" 2>/dev/null; then
    echo "$key: $before -> $(sysctl -n "$key" | tr '\t' ' ')"
  else
    echo "$key: $before (could not set $value: not permitted here)"
  fi
}
# ~55k source ports per source address, all above the servers' ports (gateways 84xx, Nchan
# 8501, Redis 6399): a client that took 8412 as its source port kept a gateway from binding it.
set_sysctl net.ipv4.ip_local_port_range "10000 64999"
set_sysctl net.core.somaxconn 65535                     # listen backlog for connect storms
set_sysctl net.ipv4.tcp_max_syn_backlog 65535
set_sysctl net.ipv4.tcp_tw_reuse 1
echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn) per process"
echo "loopback source addresses: any of 127.0.0.0/8 (the bench spreads over 127.0.0.1-127.0.0.8)"
