#!/usr/bin/env bash
# make run: what the appliance can show at this stage of the project.
# Until the DPDK dataplane issue lands this is the forwarding-core
# demonstration (tools/fulcrum_demo.c); it sends no packets and starts no
# daemon. See README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec build/plain/bin/fulcrum_demo
