#!/usr/bin/env bash
# Load run of `kinglet serve --http`: 20,000 classify requests from 8 concurrent connections
# (wrk: 2 threads × 4 connections, 10,000 answers each; real review lengths, 1–17 words), with
# the server's resident memory sampled every 0.5 s. Prints wrk's latency percentiles (queue
# wait included), the RSS before, during and after, and the server's own counters.
#   benches/http-load.sh [KINGLET_BINARY] [MODEL]     (needs wrk and curl: apt install wrk curl)
# Defaults: target/release/kinglet, models/sentiment.kinglet. Build first: cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/kinglet}
model=${2:-models/sentiment.kinglet}
port=${PORT:-18080}
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
cat > "$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local texts = {
  '{"text": "a gorgeous, moving film"}',
  '{"text": "the worst movie of the year, dull and far too long"}',
  '{"text": "an uplifting, beautifully acted film that stays with you long after the credits roll"}',
  '{"text": "fine"}',
}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/classify", nil, texts[(n % #texts) + 1])
end
local done = 0
response = function(status, headers, body)
  done = done + 1
  if status ~= 200 then io.stderr:write("status " .. status .. "\n") end
  if done >= 10000 then wrk.thread:stop() end
end
LUA
"$bin" serve --http "127.0.0.1:$port" --model "$model" 2> "$tmp/serve.err" &
pid=$!
for _ in $(seq 100); do grep -q "http://" "$tmp/serve.err" 2>/dev/null && break; sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "RSS before: $(rss) kB"
(while kill -0 "$pid" 2>/dev/null; do rss; sleep 0.5; done > "$tmp/rss.txt") &
# wrk waits out -d even after its threads stop at 10,000 answers: count from the server instead
wrk -t2 -c8 -d30s --latency -s "$tmp/post.lua" "http://127.0.0.1:$port" | sed -n '/Latency Distribution/,/99%/p'
curl -s "http://127.0.0.1:$port/metrics" |
  grep -E '^kinglet_requests_total|^kinglet_errors_total|^kinglet_request_duration_seconds_(sum|count)|^process_resident'
echo "RSS during the run: min $(sort -n "$tmp/rss.txt" | head -1) kB, max $(sort -n "$tmp/rss.txt" | tail -1) kB; after: $(rss) kB"
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
tail -1 "$tmp/serve.err"
