// For the report and junit plugins: passing and failing thresholds (one on a submetric, one on a
// submetric that never gets a sample), checks in nested groups, a slow and a failing endpoint, a
// custom trend, and hostile names (markup, quotes, U+2028, a control character) in a tag and a
// check. About 4 s.
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { Trend } from 'k6/metrics';

const think = new Trend('think_time', true);
const HOSTILE = '<script>alert(1)</script> "q" \'s\' \u2028 \u0001 &amp;';

export const options = {
  vus: 3,
  duration: '4s',
  thresholds: {
    http_req_duration: ['p(95)<5000', 'avg<1'],
    'http_req_duration{name:slow}': ['p(95)<50'],
    'http_req_duration{name:items}': ['p(99)<5000'],
    'http_req_duration{name:never}': ['p(95)<100'],
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.5'],
    think_time: ['max<10000'],
  },
};

export default function () {
  const base = __ENV.BASE_URL;
  group('shop', () => {
    const items = http.get(`${base}/api/items`, { tags: { name: 'items' } });
    check(items, { 'items status 200': (r) => r.status === 200 });
    group('checkout', () => {
      const slow = http.get(`${base}/sleep?ms=100`, { tags: { name: 'slow' } });
      check(slow, { 'slow under 50ms': (r) => r.timings.duration < 50 });
      const missing = http.get(`${base}/missing`, { tags: { name: 'missing' } });
      check(missing, { 'missing is 200': (r) => r.status === 200 });
    });
  });
  const hostile = http.get(`${base}/`, { tags: { name: HOSTILE } });
  check(hostile, { [HOSTILE]: (r) => r.status === 200 });
  think.add(20);
  sleep(0.1);
}
