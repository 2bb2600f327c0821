// tests/k6_scripts/segments.js with a pause after each iteration, so that a runner's stream
// spans a few seconds and its closed windows are published while it runs.
import { sleep } from 'k6';
import iteration from '../../../../tests/k6_scripts/segments.js';

export { options } from '../../../../tests/k6_scripts/segments.js';

export default function () {
  iteration();
  sleep(0.2);
}
