// Small shared pieces: clock, errors, logger, sync runner. No berth domain knowledge lives here.
export * from './errors.ts';
export * from './clock.ts';
export * from './logger.ts';
export * from './sync-runner.ts';
