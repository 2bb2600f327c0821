// Benchmark input with long JSON lines: HTTP requests carrying many tags.
// BASE_URL: the k6lab loopback server. ITERATIONS: set by generate.py to reach ~1M lines.
import http from 'k6/http';
import { check, group } from 'k6';

const BASE_URL = __ENV.BASE_URL;

export const options = {
  scenarios: {
    bench: {
      executor: 'shared-iterations',
      vus: 8,
      iterations: Number(__ENV.ITERATIONS || 100),
      maxDuration: '3m',
      tags: { scenario_kind: 'benchmark' },
    },
  },
  tags: {
    testid: 'bench-http-0001',
    environment: 'loopback',
    team: 'performance & reliability',
    build: '2026.11.25-rc1',
  },
};

const params = {
  tags: { endpoint_class: 'catalogue,listing', cache: 'cold', region: 'local-1' },
};

export default function () {
  group('catalogue', function () {
    const items = http.get(`${BASE_URL}/api/items`, params);
    check(items, { 'items 200': (r) => r.status === 200 });
    const home = http.get(`${BASE_URL}/`, params);
    check(home, { 'home 200': (r) => r.status === 200 });
  });
  http.get(`${BASE_URL}/missing`, { tags: { endpoint_class: 'broken' } });
}
