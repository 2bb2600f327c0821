// Steady loopback traffic for the run-store end-to-end tests: two named requests per iteration,
// 2 VUs for DURATION (default 10s). Loopback only (BASE_URL from tests/k6lab.py).
import http from 'k6/http';
import { sleep } from 'k6';

const BASE = __ENV.BASE_URL;

export const options = {
  scenarios: {
    main: { executor: 'constant-vus', vus: 2, duration: __ENV.DURATION || '10s' },
  },
};

export default function () {
  http.get(`${BASE}/`, { tags: { name: 'home' } });
  http.get(`${BASE}/api/items`, { tags: { name: 'items' } });
  sleep(0.05);
}
