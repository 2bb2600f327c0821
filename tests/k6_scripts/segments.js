// Deterministic values (from the iteration's number across all instances), so that one k6 run
// and the same test split into execution segments record the same custom samples.
import http from 'k6/http';
import exec from 'k6/execution';
import { check, group } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const done = new Counter('done');
const work = new Trend('work');
const odd = new Rate('odd');

export const options = {
  scenarios: {
    main: { executor: 'shared-iterations', vus: 3, iterations: 90, maxDuration: '30s' },
  },
  thresholds: {
    done: ['count>=90'], // only the whole test gets there: every runner alone fails it
    work: ['p(95)<100', 'max<50'], // the second fails
    odd: ['rate>0.4'],
    'http_req_duration{name:items}': ['max<5000'],
  },
};

export default function () {
  const i = exec.scenario.iterationInTest;
  done.add(1);
  work.add((i * 37) % 97);
  odd.add(i % 2 === 1);
  group('api', () => {
    const res = http.get(`${__ENV.BASE_URL}/api/items`, { tags: { name: 'items' } });
    check(res, { 'status is 200': (r) => r.status === 200 });
  });
}
