// A transaction's steps (plan.ts NftOp) as one netlink batch. Pure. The fixed setup is not encoded here: the
// proxier writes it with nft (it is written at start and on full syncs that found something to rewrite).
import type { NftOp } from '../plan.ts';
import type { EncodedBatch, NftBatch } from './encode.ts';

export type EncodeResult = { batch: EncodedBatch | undefined } | { unsupported: string };

/**
 * Writes `ops` into `batch` and finishes it: `{ batch }` (undefined when there was nothing to write), or
 * `{ unsupported }` naming the first step outside the encoder's vocabulary (the caller then writes the whole
 * transaction with nft). Throws when given a setup step.
 */
export function encodeOps(ops: readonly NftOp[], batch: NftBatch): EncodeResult {
  for (const o of ops) {
    switch (o.op) {
      case 'setup':
        throw new Error('the fixed setup is written with nft');
      case 'addChain':
        batch.addChain(o.chain);
        break;
      case 'flushChain':
        batch.flushChain(o.chain);
        break;
      case 'deleteChain':
        batch.deleteChain(o.chain);
        break;
      case 'addRules':
        for (const r of o.rules) if (!batch.addRule(o.chain, r)) return { unsupported: `rule "${r}"` };
        break;
      case 'addSet':
        batch.addAffinitySet(o.set);
        break;
      case 'deleteSet':
        batch.deleteSet(o.set);
        break;
      case 'elements':
        if (!batch.elements(o.add, o.elements)) return { unsupported: `an element of ${o.elements[0]?.set ?? '?'}` };
        break;
    }
  }
  return { batch: batch.finish() };
}
