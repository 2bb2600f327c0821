// The script's own summary options: summaryTrendStats with p(99.9) and count, and
// summaryTimeUnit 'ms', which k6 applies to its text summary (the export stays in ms, unrounded).
// Thresholds on a trend, a submetric (never in k6's stream) and a rate; one fails: k6 exits 99.
// Bounded (per-vu-iterations), loopback only (BASE_URL from tests/k6lab.py).
import http from 'k6/http';
import { check } from 'k6';
import { Trend } from 'k6/metrics';

const BASE = __ENV.BASE_URL;
const think = new Trend('so_think', true);

export const options = {
  scenarios: {
    main: { executor: 'per-vu-iterations', vus: 2, iterations: 25, maxDuration: '10s' },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99.9)', 'count'],
  summaryTimeUnit: 'ms',
  thresholds: {
    http_req_duration: ['p(99.9)<2000', 'avg<0.001'],
    'http_req_duration{name:slow}': ['min>=15', 'p(95)<2000'],
    so_think: ['max>1000', 'p(99.9)<70000'],
    checks: ['rate==1'],
  },
};

export default function () {
  const res = http.get(`${BASE}/`);
  check(res, { 'status is 200': (r) => r.status === 200 });
  http.get(`${BASE}/slow`, { tags: { name: 'slow' } });
  think.add(1234.5 + Math.random() * 61000);
}
