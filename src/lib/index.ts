// Small shared pieces: clock, back-off, errors, logger, sync runner. No berth domain knowledge lives here.
export * from './errors.ts';
export * from './atomic-file.ts';
export * from './clock.ts';
export * from './backoff.ts';
export * from './logger.ts';
export * from './http-get.ts';
export * from './redact.ts';
export * from './sync-runner.ts';
