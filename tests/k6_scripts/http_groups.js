// HTTP with nested groups and checks (passing and failing), setup/teardown that make requests,
// submetric thresholds on built-in tags, a group tag and a custom tag, p(99.9), all passing:
// k6 exits 0. Bounded (shared-iterations), loopback only (BASE_URL from tests/k6lab.py).
import http from 'k6/http';
import { check, group } from 'k6';

const BASE = __ENV.BASE_URL;

export const options = {
  scenarios: {
    main: { executor: 'shared-iterations', vus: 2, iterations: 40, maxDuration: '20s' },
  },
  thresholds: {
    http_req_duration: ['p(99.9)<2000', 'avg<1000', 'med<1000'],
    'http_req_duration{status:200}': ['p(95)<1000', { threshold: 'p(99.9)<2000' }],
    'http_req_duration{name:items}': ['max<2000'],
    'http_req_duration{group:::api::slow}': ['min>=15'],
    'http_req_duration{name:never requested}': ['max<1'],
    'http_reqs{status:404}': ['count>=40'],
    'http_reqs{layer:api}': ['count>=80'],
    http_req_failed: ['rate<0.5'],
    'http_req_failed{name:missing}': ['rate==1'],
    checks: ['rate>0.5'],
    'checks{check:status is 200}': ['rate==1'],
    'checks{check:missing is 200}': ['rate==0'],
    iterations: ['count==40'],
  },
};

export function setup() {
  const res = http.get(`${BASE}/`, { tags: { name: 'setup' } });
  check(res, { 'setup is 200': (r) => r.status === 200 });
  return { status: res.status };
}

export default function (data) {
  group('home', function () {
    const res = http.get(`${BASE}/`);
    check(res, {
      'status is 200': (r) => r.status === 200,
      'body says ok': (r) => r.body.includes('ok'),
      'setup saw 200': () => data.status === 200,
    });
  });
  group('api', function () {
    group('items', function () {
      const res = http.get(`${BASE}/api/items`, { tags: { name: 'items', layer: 'api' } });
      check(res, {
        'status is 200': (r) => r.status === 200,
        'three items': (r) => r.json('items').length === 3,
      });
      group('deeper', function () {
        check(res, { 'four items': (r) => r.json('items').length === 4 }); // always fails
      });
    });
    group('slow', function () {
      http.get(`${BASE}/slow`, { tags: { layer: 'api' } });
    });
  });
  const missing = http.get(`${BASE}/missing`, { tags: { name: 'missing' } });
  check(missing, {
    'missing is 404': (r) => r.status === 404,
    'missing is 200': (r) => r.status === 200, // always fails
  });
}

export function teardown(data) {
  const res = http.get(`${BASE}/api/items`, { tags: { name: 'teardown' } });
  check(res, { 'teardown is 200': (r) => r.status === 200 && data.status === 200 });
}
