// The first k6-mcp-server's way in, kept working: every iteration POSTs one seed envelope
// to the bridge's HTTP receiver. Start the bridge first:
//   k6mcp-bridge --listen 127.0.0.1:5000 -p jsonl -o jsonl.path=metrics.jsonl
//   k6 run examples/seed-post-metrics.js
// The seed sent to http://localhost:5000/mcp; MCP_URL and DURATION (bounded) may be changed.
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  vus: 4,
  duration: __ENV.DURATION || '10s',
};

const url = __ENV.MCP_URL || 'http://localhost:5000/mcp';

export default function () {
  const payload = JSON.stringify({ type: 'metrics', data: { vus: 10, iterations: 100 } });
  const res = http.post(url, payload, { headers: { 'Content-Type': 'application/json' } });
  check(res, { 'accepted': (r) => r.status === 202 });
}
