// Small k6 test that exercises every record shape k6mcp-bridge must read.
// Run against the k6lab loopback server: BASE_URL is set by regenerate.py.
import http from 'k6/http';
import exec from 'k6/execution';
import { check, group, sleep } from 'k6';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL;

const itemsSeen = new Counter('items_seen');
const lastItemCount = new Gauge('last_item_count');
const evenIteration = new Rate('even_iteration');
const itemsWait = new Trend('items_wait', true);
const thinkStep = new Gauge('think_step');

export const options = {
  vus: 2,
  duration: '3s',
  tags: { suite: 'samples' },
  thresholds: {
    http_req_duration: [{ threshold: 'p(95)<1000', abortOnFail: false }, 'avg<500'],
    'http_req_duration{status:200}': ['max<2000'],
    http_req_failed: ['rate<0.5'],
    checks: ['rate>0.5'],
    items_seen: ['count>0'],
  },
};

export function setup() {
  const res = http.get(`${BASE_URL}/`, { tags: { name: 'setup-home' } });
  return { setupStatus: res.status };
}

export default function (data) {
  const iteration = exec.vu.iterationInScenario;

  group('home', function () {
    const res = http.get(`${BASE_URL}/`, { tags: { 'my tag': 'a,b&c=d' } });
    check(res, {
      'home is 200': (r) => r.status === 200,
      'setup saw 200': () => data.setupStatus === 200,
    });
  });

  group('api', function () {
    group('items', function () {
      exec.vu.metrics.metadata['trace_id'] = `t-${exec.vu.idInTest}-${iteration}`;
      const res = http.get(`${BASE_URL}/api/items`, { tags: { name: 'items' } });
      delete exec.vu.metrics.metadata['trace_id'];
      itemsWait.add(res.timings.waiting);
      const items = res.json('items') || [];
      itemsSeen.add(items.length, { kind: 'api' });
      lastItemCount.add(items.length);
      check(items, {
        'three items': (list) => list.length === 3,
        // Fails on odd iterations, so the checks rate is below 1.
        'even iteration': () => iteration % 2 === 0,
      });
    });
    group('slow', function () {
      http.get(`${BASE_URL}/slow`);
    });
  });

  const missing = http.get(`${BASE_URL}/missing`);
  check(missing, { 'missing is 404': (r) => r.status === 404 });
  evenIteration.add(iteration % 2 === 0);

  // Think time in short steps: small writes, so with `--out json=-` k6's 4 KiB stdout buffer
  // holds part of a record when the progress line is printed (the record gets split).
  for (let step = 1; step <= 5; step++) {
    sleep(0.1);
    thinkStep.add(step);
  }
}

export function teardown(data) {
  console.log(`teardown: setup status was ${data.setupStatus}`);
}
