// Benchmark input with short JSON lines: custom metrics only, no HTTP, in a tight loop.
// ITERATIONS: set by generate.py to reach ~1M lines.
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';

const ops = new Counter('ops');
const level = new Gauge('level');
const ok = new Rate('ok');
const work = new Trend('work');

export const options = {
  scenarios: {
    bench: {
      executor: 'shared-iterations',
      vus: 4,
      iterations: Number(__ENV.ITERATIONS || 100),
      maxDuration: '3m',
    },
  },
};

export default function () {
  for (let i = 0; i < 50; i++) {
    ops.add(1);
    level.add(i);
    ok.add(i % 7 !== 0);
    work.add(i * 0.5);
  }
}
