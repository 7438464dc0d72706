-- wrk script: POST one JSON-RPC envelope per request and count the answers that are not what
-- the call should get (HTTP 200 and `"error": null`, or the expected error text).
--
-- Arguments (after `--`): <body> [expect] [unique-prefix]
--   body           the envelope, sent as is; "@N@" in it becomes a unique token per request
--   expect         the text every good answer contains (default: "error": null)
--   unique-prefix  the start of every unique token (make it differ between runs)
-- The summary is printed as one line, `BENCH {json}`, for bench/wrk.py to read.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   body = args[1]
   expect = args[2] or '"error": null'
   prefix = (args[3] or "u") .. tid .. "x"
   templated = string.find(body, "@N@", 1, true) ~= nil
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   fixed = wrk.format(nil, nil, nil, body)
   unexpected = 0
   answers = 0
end

function request()
   if not templated then
      return fixed
   end
   counter = counter + 1
   return wrk.format(nil, nil, nil, (string.gsub(body, "@N@", prefix .. counter)))
end

function response(status, headers, answer)
   answers = answers + 1
   if status ~= 200 or not string.find(answer, expect, 1, true) then
      unexpected = unexpected + 1
   end
end

function done(summary, latency, requests)
   local unexpected_total, answers_total = 0, 0
   for _, thread in ipairs(threads) do
      unexpected_total = unexpected_total + thread:get("unexpected")
      answers_total = answers_total + thread:get("answers")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "answers": %d, "unexpected": %d, ' ..
      '"socket_errors": %d, "p50_us": %d, "p99_us": %d}\n',
      summary.requests, summary.duration, answers_total, unexpected_total,
      e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
