#!/usr/bin/env bash
# Install the Debian packages Fulcrum needs, only those that are missing.
# Idempotent: a second run installs nothing and prints one line.
set -euo pipefail

PKGS=(
	build-essential pkg-config
	libdpdk-dev dpdk              # fast path (DPDK 22.11 LTS)
	libconfig-dev                 # configuration files
	libcmocka-dev                 # unit tests
	libevent-dev libjansson-dev   # control plane: event loop, HTTP, JSON
	libcurl4-openssl-dev          # fulcrumctl
	libssl-dev                    # TLS
	clang libclang-rt-14-dev      # libFuzzer targets, sanitizer runtimes
	libpcap-dev                   # pcap golden tests
	iproute2 ethtool nftables curl wrk nginx-light   # labs and end-to-end tests
	valgrind                      # callgrind instruction counts in benchmarks
	python3
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages present"
	exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages and not root; run as root or: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
