import { benchBackend } from './backend.js';

/**
 * The docker backend against bare starts; WARDEN_BENCH_DOCKER_RUNTIME=runsc measures Docker + gVisor.
 */
export function benchDocker(rounds = 20): Promise<Record<string, unknown>> {
  const runtime = process.env.WARDEN_BENCH_DOCKER_RUNTIME === 'runsc' ? 'runsc' : 'runc';
  return benchBackend({ backend: 'docker', docker: { runtime } }, { runtime }, rounds);
}
