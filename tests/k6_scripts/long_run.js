// A 10 s constant-arrival-rate test (2 VUs, 10 iterations/s) whose setup and teardown make a
// request and do not idle: the counter rates' denominator is then close to the sample span.
// Passing thresholds on counters' rate and count, trends (p(99.9)) and a check submetric:
// k6 exits 0. Bounded (fixed duration), loopback only (BASE_URL from tests/k6lab.py).
import http from 'k6/http';
import { check, group } from 'k6';
import { Counter } from 'k6/metrics';

const BASE = __ENV.BASE_URL;
const done = new Counter('lr_done');

export const options = {
  scenarios: {
    steady: {
      executor: 'constant-arrival-rate',
      rate: 10,
      timeUnit: '1s',
      duration: '10s',
      preAllocatedVUs: 2,
      maxVUs: 2,
      gracefulStop: '2s',
    },
  },
  thresholds: {
    http_reqs: ['rate>5', 'count>150'],
    lr_done: ['rate>5', 'rate<50'],
    http_req_duration: ['p(99.9)<2000', 'p(95)<1000'],
    'http_req_duration{name:slow}': ['p(99.9)<2000', 'min>=15'],
    'checks{check:slow is 200}': ['rate==1'],
    iteration_duration: ['p(99.9)<3000'],
  },
};

export function setup() {
  http.get(`${BASE}/`, { tags: { name: 'setup' } });
}

export default function () {
  group('steady', function () {
    const res = http.get(`${BASE}/api/items`);
    check(res, { 'items is 200': (r) => r.status === 200 });
  });
  const slow = http.get(`${BASE}/slow`, { tags: { name: 'slow' } });
  check(slow, { 'slow is 200': (r) => r.status === 200 });
  done.add(1);
}

export function teardown() {
  http.get(`${BASE}/`, { tags: { name: 'teardown' } });
}
