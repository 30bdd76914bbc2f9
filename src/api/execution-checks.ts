import { findLanguage, LANGUAGES } from '../languages/index.js';
import type { ExecutionRequest } from '../runner/index.js';
import type { AppDeps } from './deps.js';
import { ApiError } from './errors.js';
import { executionWithinTenant } from './tenant-limits.js';
import type { ExecuteRequestBody } from './schemas.js';

const languageList = Object.values(LANGUAGES)
  .map((l) => l.id)
  .join(', ');

/**
 * What an execution request must satisfy beyond its schema, for POST /execute and each item of
 * POST /execute/batch alike: a known language, no network unless the server allows it, stdin or test
 * cases, a backend that isolates and works here, and limits within the tenant's ceilings. Throws an
 * ApiError (400) naming the field.
 */
export async function checkExecution(
  deps: Pick<AppDeps, 'config' | 'worker'>,
  body: ExecuteRequestBody,
  tenant: string,
): Promise<ExecutionRequest> {
  const { config } = deps;
  const language = findLanguage(body.language);
  if (!language) {
    throw new ApiError(
      400,
      'unknown_language',
      `unknown language ${JSON.stringify(body.language)}; supported: ${languageList}`,
      'language',
    );
  }
  if (body.limits?.network_access && !config.sandbox.allowNetwork) {
    throw new ApiError(
      400,
      'network_not_allowed',
      'network access is disabled on this server (sandbox.allowNetwork)',
      'limits.network_access',
    );
  }
  if (body.stdin && body.test_cases?.length) {
    throw new ApiError(
      400,
      'invalid_request',
      'give stdin or test_cases (each has its input_data), not both',
      'stdin',
    );
  }
  await checkBackend(deps, body.backend);
  return { ...body, language: language.id, limits: executionWithinTenant(config, tenant, body.limits) };
}

async function checkBackend(
  deps: Pick<AppDeps, 'config' | 'worker'>,
  backend: ExecuteRequestBody['backend'],
): Promise<void> {
  if (!backend || backend === deps.config.sandbox.backend) return;
  if (backend === 'process') {
    throw new ApiError(
      400,
      'backend_not_allowed',
      'the process backend does not isolate code; it is not served here',
      'backend',
    );
  }
  if (!deps.worker) return; // separate workers: they report an unavailable backend as an `error` verdict
  const probe = (await deps.worker.probe()).find((p) => p.backend === backend);
  if (!probe?.available) {
    throw new ApiError(
      400,
      'backend_unavailable',
      `backend ${backend} is not available on this server`,
      'backend',
    );
  }
}
