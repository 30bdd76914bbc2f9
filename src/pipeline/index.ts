/** Task files (SPEC §6): naming and moving uploads, validating them, running their handlers. */
export {
  MAX_TASK_NAME_CHARS,
  TaskFileExistsError,
  UnsafeFileNameError,
  installTaskFile,
  listStaged,
  promote,
  quarantine,
  recoverValidationFile,
  safeTaskName,
  sha256,
  stageFile,
  stagedPath,
  tenantTasksDir,
  unlinkIfPresent,
  type FileLocation,
  type QuarantineRecord,
  type RecoveryHints,
  type StagedFile,
  type TaskName,
  type ValidationDirs,
} from './files.js';
export { SandboxFailureError } from './reasons.js';
export { prewarmHarnesses } from './sandboxes.js';
export { runTask, type TaskRunInput, type TaskRunOutcome } from './run-task.js';
export {
  DEFAULT_PROBES,
  MAX_SAMPLE_BYTES,
  MAX_SAMPLE_PAYLOADS,
  VALIDATION_LIMITS,
  validateTaskFile,
  type ProbeReport,
  type TaskDeps,
  type ValidationInput,
  type ValidationOutcome,
  type ValidationStatus,
} from './validate.js';
export { resourceUsage, validationReport, type ResourceUsage, type ValidationReport } from './report.js';
