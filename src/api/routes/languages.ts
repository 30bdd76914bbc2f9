import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { analyze, ruleAction, RULES } from '../../analysis/index.js';
import { findLanguage, LANGUAGES, languageVersion, type Language } from '../../languages/index.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import {
  errors,
  languageParams,
  languagesResponse,
  ruleCatalogue,
  validateRequest,
  validateResponse,
} from '../schemas.js';

function language(name: string): Language {
  const found = findLanguage(name);
  if (!found) {
    const ids = Object.keys(LANGUAGES).join(', ');
    throw new ApiError(
      400,
      'unknown_language',
      `unknown language ${JSON.stringify(name)}; supported: ${ids}`,
      'language',
    );
  }
  return found;
}

/** Static analysis without running anything, and what each language offers. */
export const languageRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const policy = deps.config.analysis;

    app.post(
      '/validate',
      {
        config: { scope: 'execute' },
        schema: {
          summary: 'Static analysis only: would this code be run?',
          body: validateRequest(deps.config),
          response: { 200: validateResponse, ...errors(400, 413, 415, 500) },
        },
      },
      async (req) => {
        const lang = language(req.body.language);
        const report = await analyze(req.body.code, lang.analysis, policy);
        return {
          safe: report.safe,
          language: lang.id,
          profile: policy.profile,
          reject_at: policy.rejectAt,
          violations: report.findings,
          rejected: report.rejected.length,
        };
      },
    );

    app.get(
      '/languages',
      {
        config: { scope: 'public' },
        schema: {
          summary: 'Supported languages and their runtimes',
          response: { 200: languagesResponse },
        },
      },
      async () => ({
        languages: Object.values(LANGUAGES).map((l) => ({
          id: l.id,
          name: l.name,
          version: languageVersion(l),
          file_name: l.fileName,
          extensions: l.extensions,
          aliases: l.aliases,
        })),
      }),
    );

    app.get(
      '/languages/:language/validate',
      {
        config: { scope: 'public' },
        schema: {
          summary: 'The static rules applied to a language, and which of them reject code here',
          params: languageParams,
          response: { 200: ruleCatalogue, ...errors(400) },
        },
      },
      async (req) => {
        const lang = language(req.params.language);
        return {
          language: lang.id,
          supported: true as const,
          profile: policy.profile,
          reject_at: policy.rejectAt,
          max_code_chars: policy.maxCodeChars,
          rules: RULES.filter((r) => r.languages.includes(lang.analysis)).map((r) => {
            const action = ruleAction(r.id, r.severity, policy);
            return {
              id: r.id,
              severity: r.severity,
              description: r.description,
              action,
              rejects: action === 'reject',
            };
          }),
        };
      },
    );
  };
