-- wrk script for scripts/bench-redemptions: every request redeems the one reward (a
-- voucher with stock: every redemption takes the reward's row lock) for the next member
-- in turn, each with a request_id of its own. Members and the reward come from the
-- environment (MEMBERS_FILE: one member id per line; REWARD_ID).
local threads = {}
-- `id` is each thread's own, set by setup() as a global of the thread.
local members, reward, n = {}, nil, 0

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("MEMBERS_FILE")) do
    members[#members + 1] = line
  end
  reward = os.getenv("REWARD_ID")
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TALLY_KEY")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local m = members[((n * 7 + id * 131) % #members) + 1]
  local body = string.format('{"reward_id":"%s","request_id":"bench-%d-%d"}', reward, id, n)
  return wrk.format(nil, "/v1/members/" .. m .. "/redemptions", nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.1f ms, p99 %.1f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
