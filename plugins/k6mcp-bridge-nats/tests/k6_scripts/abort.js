// tests/k6_scripts/segments.js's iteration over about 20 s a runner (in three segments), with a
// threshold that the whole test crosses long before any runner alone would: abortOnFail.
import { sleep } from 'k6';
import iteration from '../../../../tests/k6_scripts/segments.js';

export const options = {
  scenarios: {
    main: { executor: 'shared-iterations', vus: 3, iterations: 300, maxDuration: '60s' },
  },
  thresholds: { done: [{ threshold: 'count<45', abortOnFail: true }] },
};

export default function () {
  iteration();
  sleep(0.2);
}
