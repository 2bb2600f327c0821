// A custom metric of each of the four types: a counter with fractional values, a gauge that goes
// negative and one that stays negative (k6 v1.1.0 reports max 0 for it: bug #6181), a rate with
// values other than 0/1 (any non-zero value is a pass), trends with and without the time flag.
// Thresholds on them and on custom-tag submetrics, some passing and some failing: k6 exits 99.
// Bounded (per-vu-iterations), loopback only (BASE_URL from tests/k6lab.py).
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';

const BASE = __ENV.BASE_URL;

const hits = new Counter('cm_hits');
const level = new Gauge('cm_level');
const debt = new Gauge('cm_debt');
const ratio = new Rate('cm_ratio');
const latency = new Trend('cm_latency', true);
const sizes = new Trend('cm_sizes');

export const options = {
  scenarios: {
    main: { executor: 'per-vu-iterations', vus: 2, iterations: 30, maxDuration: '20s' },
  },
  thresholds: {
    cm_hits: ['count>10', { threshold: 'count<5', abortOnFail: false }, 'rate>0'],
    'cm_hits{kind:odd}': ['count>0'],
    cm_level: ['value<0', 'value>0'],
    cm_debt: ['value<=-1'],
    cm_ratio: ['rate>0.5', 'rate<0.1'],
    'cm_ratio{kind:even}': ['rate>=0'],
    cm_latency: ['p(99.9)<5000', 'p(99.9)<0.001', 'avg<5000'],
    'cm_latency{kind:even}': ['p(99.9)<5000', 'med>0'],
    cm_sizes: ['p(50)>=0', 'max<1', 'p(99.9)>0'],
    'http_req_duration{kind:odd}': ['p(90)<2000'],
    'checks{scope:custom}': ['rate<1'],
  },
};

export function setup() {
  http.get(`${BASE}/api/items`, { tags: { name: 'setup' } });
  hits.add(0.25, { kind: 'setup' });
}

export default function () {
  const i = exec.scenario.iterationInTest;
  const kind = i % 2 === 0 ? 'even' : 'odd';
  const res = http.get(`${BASE}/api/items`, { tags: { kind } });
  hits.add(1.5, { kind });
  if (i % 5 === 0) hits.add(3, { kind });
  level.add(10 - i * 1.25, { kind });
  debt.add(-100 + i * 0.5);
  ratio.add([0, 0.5, -2, true, false][i % 5], { kind });
  latency.add(res.timings.duration, { kind });
  latency.add(res.timings.waiting + i / 7, { kind });
  sizes.add(res.body.length + i * 0.1 - 40, { kind });
  check(res, { 'custom even': () => kind === 'even' }, { scope: 'custom' });
}

export function teardown() {
  http.get(`${BASE}/`, { tags: { name: 'teardown' } });
  level.add(-3.5);
}
