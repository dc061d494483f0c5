import { describe, expect, it } from 'vitest';
import { redactValues, REDACTED } from '../../src/lib/index.ts';

describe('redactValues', () => {
  it.each([
    ['a program name quoted by runc', 'exec: "s3cr3t-abc": executable file not found', ['s3cr3t-abc'], `exec: "${REDACTED}": executable file not found`],
    ['every occurrence', 'x=hunter22 y=hunter22', ['hunter22'], `x=${REDACTED} y=${REDACTED}`],
    ['the longer of two overlapping values whole', 'token abcdef123', ['abcd', 'abcdef123'], `token ${REDACTED}`],
    ['values too short to matter are kept', 'exit 1 after yes', ['1', 'yes'], 'exit 1 after yes'],
    ['regex characters are literal', 'pw a.b*c$(x) end', ['a.b*c$(x)'], `pw ${REDACTED} end`],
    ['no values', 'plain', [], 'plain'],
  ])('%s', (_what, msg, values, want) => {
    expect(redactValues(msg, values)).toBe(want);
  });
});
