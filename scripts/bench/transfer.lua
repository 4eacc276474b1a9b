-- wrk script for scripts/bench-transfers: every request sends one point from one member
-- to another, pairs spread over all members (each transfer locks its two members), each
-- with a request_id of its own. Members come from the environment (MEMBERS_FILE: one
-- member id per line).
local threads = {}
-- `id` is each thread's own, set by setup() as a global of the thread.
local members, n = {}, 0

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("MEMBERS_FILE")) do
    members[#members + 1] = line
  end
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TALLY_KEY")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local count = #members
  local from = ((n * 7 + id * 131) % count) + 1
  local to = ((from + 1 + (n * 13) % (count - 1)) - 1) % count + 1
  local body = string.format('{"request_id":"bench-%d-%d","to":{"id":"%s"},"points":1}', id, n, members[to])
  return wrk.format(nil, "/v1/members/" .. members[from] .. "/transfers", nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.1f ms, p99 %.1f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
