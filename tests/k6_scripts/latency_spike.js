// A 10 s test whose server is slow (100 ms) for half a second, 4 s in: a p(95) over any 1 s
// window catches it; the whole run's p(95) does not (the slow requests are ~2% of them).
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';

export const options = { vus: 4, duration: '10s' };

export default function () {
  const elapsed = (Date.now() - exec.scenario.startTime) / 1000;
  const spike = elapsed >= 4 && elapsed < 4.5;
  http.get(`${__ENV.BASE_URL}/sleep?ms=${spike ? 100 : 0}`, { tags: { name: 'sleep' } });
  sleep(0.05);
}
