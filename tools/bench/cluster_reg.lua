-- wrk script for tools/bench/cluster.sh: every request registers one new
-- static backend in a fulcrum cluster (POST /v1/services/NAME/backends, one
-- Raft log entry each). A service holds at most SM_MAX_BACKENDS (4096)
-- backends, so each wrk thread fills its own services, PER_SVC backends each:
--   service  = PREFIX-t<thread>-<k>         k = n / PER_SVC (created beforehand)
--   address  = 10.1TT.1AA.1BB, port 1PPPP   (3-digit octets, 5-digit port)
-- The body is therefore always the same length, which is the value size the
-- etcd side (cluster_put.lua) copies. Environment: BENCH_TOKEN (admin token),
-- BENCH_PREFIX, BENCH_PER_SVC. done() prints one machine-readable line:
--   RESULT requests duration_us non2xx socket_errors p50_us p99_us mean_us max_us

local token = os.getenv("BENCH_TOKEN") or ""
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local per_svc = tonumber(os.getenv("BENCH_PER_SVC") or "4000")

local threads = {}
local next_tid = 0

function setup(thread)
	thread:set("tid", next_tid)
	next_tid = next_tid + 1
	table.insert(threads, thread)
end

local n = 0
local headers

function init(args)
	headers = { ["Authorization"] = "Bearer " .. token,
		    ["Content-Type"] = "application/json" }
end

function request()
	local k = math.floor(n / per_svc)
	local i = n % per_svc
	n = n + 1
	local path = string.format("/v1/services/%s-t%d-%d/backends", prefix, tid, k)
	-- i < 10000 gives octets 100..199 and ports 10000..10099: fixed width.
	local body = string.format('{"address":"10.%d.%d.%d","port":%d}',
		100 + tid, 100 + math.floor(i / 100) % 100, 100 + i % 100,
		10000 + math.floor(i / 10000))
	return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT %d %d %d %d %d %d %d %d\n",
		summary.requests, summary.duration, e.status,
		e.connect + e.read + e.write + e.timeout,
		latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
