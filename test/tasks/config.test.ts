import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

describe('task-file settings', () => {
  it('default to dirs under the data dir and the documented queue names', () => {
    const config = loadConfig({ env: { WARDEN_DATA_DIR: '/srv/warden' }, path: undefined });
    expect(config.tasks).toEqual({
      stagingDir: '/srv/warden/uploads',
      dir: '/srv/warden/tasks',
      quarantineDir: '/srv/warden/quarantine',
      validationQueue: 'warden-task-validation',
      taskQueue: 'warden-tasks',
      maxUploadBytes: 256 * 1024,
      maxAttempts: 3,
      jobLockMs: 15_000,
      recoveryIntervalMs: 30_000,
    });
    expect(config.workers.heartbeatIntervalMs).toBe(5000);
  });

  it('take UPLOAD_STAGING_DIR, TASKS_DIR, QUARANTINE_DIR and the queue names from the environment', () => {
    const config = loadConfig({
      env: {
        UPLOAD_STAGING_DIR: '/shared/staging',
        TASKS_DIR: '/shared/tasks',
        QUARANTINE_DIR: '/shared/quarantine',
        TASK_VALIDATION_QUEUE_NAME: 'validate-here',
        TASK_QUEUE_NAME: 'run-here',
      },
    });
    expect(config.tasks).toMatchObject({
      stagingDir: '/shared/staging',
      dir: '/shared/tasks',
      quarantineDir: '/shared/quarantine',
      validationQueue: 'validate-here',
      taskQueue: 'run-here',
    });
  });

  it('names a bad setting and the variable it came from', () => {
    expect(() => loadConfig({ env: { TASK_VALIDATION_QUEUE_NAME: 'no spaces' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { TASK_VALIDATION_QUEUE_NAME: 'no spaces' } })).toThrow(
      /tasks\.validationQueue \(from TASK_VALIDATION_QUEUE_NAME\)/,
    );
  });
});
