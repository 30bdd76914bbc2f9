import { benchBackend } from './backend.js';

/** The gvisor backend (runsc, the platform Warden picks here) against bare starts. */
export async function benchGvisor(rounds = 20): Promise<Record<string, unknown>> {
  return benchBackend({ backend: 'gvisor' }, {}, rounds);
}
