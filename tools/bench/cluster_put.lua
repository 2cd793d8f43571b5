-- wrk script for tools/bench/cluster.sh: the etcd side of the registration
-- benchmark. Every request is one etcd v3 put through the JSON gateway
-- (POST /v3/kv/put, key and value base64), one Raft log entry each, like a
-- fulcrum registration. The value is byte for byte the body cluster_reg.lua
-- would send for the same request (same length: the "same value size"), the
-- key is distinct per request: /bench/PREFIX/t<thread>/<n>.
-- Environment: BENCH_PREFIX. done() prints the same RESULT line as
-- cluster_reg.lua.

local prefix = os.getenv("BENCH_PREFIX") or "bench"

local next_tid = 0

function setup(thread)
	thread:set("tid", next_tid)
	next_tid = next_tid + 1
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64 = {}
for i = 1, 64 do
	b64[i - 1] = b64chars:sub(i, i)
end

-- RFC 4648 base64 (the JSON gateway's encoding of bytes fields).
local function base64(s)
	local out = {}
	local len = #s
	for i = 1, len, 3 do
		local a, b, c = s:byte(i, i + 2)
		local v = a * 65536 + (b or 0) * 256 + (c or 0)
		local c1 = math.floor(v / 262144) % 64
		local c2 = math.floor(v / 4096) % 64
		local c3 = math.floor(v / 64) % 64
		local c4 = v % 64
		out[#out + 1] = b64[c1] .. b64[c2] ..
			(b and b64[c3] or "=") .. (c and b64[c4] or "=")
	end
	return table.concat(out)
end

local n = 0
local headers

function init(args)
	headers = { ["Content-Type"] = "application/json" }
end

function request()
	local i = n
	n = n + 1
	local key = string.format("/bench/%s/t%d/%d", prefix, tid, i)
	local j = i % 4000 -- as cluster_reg.lua: i within one service
	local value = string.format('{"address":"10.%d.%d.%d","port":%d}',
		100 + tid, 100 + math.floor(j / 100) % 100, 100 + j % 100,
		10000 + math.floor(j / 10000))
	local body = string.format('{"key":"%s","value":"%s"}', base64(key), base64(value))
	return wrk.format("POST", "/v3/kv/put", headers, body)
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT %d %d %d %d %d %d %d %d\n",
		summary.requests, summary.duration, e.status,
		e.connect + e.read + e.write + e.timeout,
		latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
