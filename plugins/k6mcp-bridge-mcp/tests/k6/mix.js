// Loopback traffic for the MCP server's tests: per iteration one good request (home), one that
// always fails (missing: 404), one slow one (slow: /sleep?ms=SLOW_MS) and one fast (items).
// 4 VUs for DURATION (default 3s). A threshold on p(95) of all requests passes when SLOW_MS is
// small (the fast run) and fails when it is 200 (the slow run).
import http from 'k6/http';

const BASE = __ENV.BASE_URL;
const SLOW_MS = __ENV.SLOW_MS || '200';

export const options = {
  scenarios: {
    main: { executor: 'constant-vus', vus: 4, duration: __ENV.DURATION || '3s' },
  },
  thresholds: {
    http_req_duration: ['p(95)<150'],
    http_req_failed: ['rate<0.5'],
  },
};

export default function () {
  http.get(`${BASE}/`, { tags: { name: 'home' } });
  http.get(`${BASE}/missing`, { tags: { name: 'missing' } });
  http.get(`${BASE}/sleep?ms=${SLOW_MS}`, { tags: { name: 'slow' } });
  http.get(`${BASE}/api/items`, { tags: { name: 'items' } });
}
