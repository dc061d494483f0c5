// The netlink encoder of the nftables mode against nft 1.0.6's own bytecode: every rule form ruleset.ts writes,
// compiled by berth and decoded into libnftnl's debug form, equals what `nft --debug=netlink -f` printed for the
// same text (captured below; test/integration/proxy-nft-netlink.test.ts compares with a live nft too). Set elements,
// anonymous sets and the batch framing are checked byte for byte where nft's `--debug=mnl` showed them.
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { AnonSetNameClashError, NftError } from '../../src/proxy/nftables/errors.ts';
import { NftNetlink, anonNamePrefix } from '../../src/proxy/nftables/netlink/client.ts';
import type { NetlinkTransport } from '../../src/proxy/nftables/netlink/transport.ts';
import { decodeData, dataWords, verdictText } from '../../src/proxy/nftables/netlink/expr.ts';
import { type EncodedBatch, NftBatch, compileRule, elementKeyBytes, nftType, NFT_MSG_NEWRULE, NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM } from '../../src/proxy/nftables/netlink/encode.ts';
import { attrMap, attrs, messageAttrs, splitMessages, NLM_F_ACK, NLM_F_ECHO, NLM_F_EXCL, type NlMessage } from '../../src/proxy/nftables/netlink/nlmsg.ts';
import { NFT_BYTECODE, ruleBytecode } from './proxy-nft-bytecode-fixtures.ts';

function encodeOne(fill: (b: NftBatch) => void): NlMessage[] {
  const b = new NftBatch(1);
  fill(b);
  return splitMessages(b.finish()!.bytes);
}

/** Elements of a NEWSETELEM in nft's debug form: "element <key words>  : <data> <flags>". */
function elementsOf(m: NlMessage): string[] {
  const list = messageAttrs(m).get(3)!;
  return attrs(list).map((a) => {
    const e = attrMap(attrs(a.value));
    const key = dataWords(decodeData(e.get(1)!).value!);
    const data = e.get(2) ? decodeData(e.get(2)!) : undefined;
    const flags = e.get(3)?.readUInt32BE(0) ?? 0;
    const comment = e.get(6) ? e.get(6)!.toString('latin1') : '';
    return `${key} : ${data?.verdict ? verdictText(data.verdict) : ''} ${flags}${comment ? ` ${JSON.stringify(comment)}` : ''}`;
  });
}

describe('nftables netlink encoder: rules compile to nft 1.0.6 bytecode', () => {
  it.each(NFT_BYTECODE)('%s', (rule, expected) => {
    expect(ruleBytecode(rule)).toEqual(expected);
  });

  it('keeps a comment as the rule user data nft writes (type 0, length with NUL, text, NUL)', () => {
    const msgs = encodeOne((b) => b.addRule('c1', 'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"'));
    const r = msgs.find((m) => m.type === nftType(NFT_MSG_NEWRULE))!;
    expect(messageAttrs(r).get(7)!.toString('latin1')).toBe('\x00\x19masquerade local traffic\x00');
  });

  it('refuses anything outside the vocabulary instead of guessing', () => {
    for (const rule of ['ct state new jump x', 'ip daddr 10.0.0.0/33 drop', 'meta l4proto tcp dnat to 10.0.0.1', 'tcp dport 70000 drop', 'ip saddr != @set drop', 'mark set mark or 0x4000', 'goto']) {
      expect(compileRule(rule), rule).toBeUndefined();
    }
  });
});

describe('nftables netlink encoder: sets and elements', () => {
  it('numgen vmap: an anonymous constant map bound by set id, keys in host order, verdicts as nft sends them', () => {
    const msgs = encodeOne((b) => b.addRule('c1', 'numgen random mod 2 vmap { 0 : goto endpoint-A, 1 : goto endpoint-B }'));
    const set = msgs.find((m) => m.type === nftType(NFT_MSG_NEWSET))!;
    const a = messageAttrs(set);
    expect(a.get(2)!.toString('latin1')).toBe('__map%d\0');
    // flags ANONYMOUS|CONSTANT|MAP, key integer/4 bytes, data verdict, desc size 2 — as `nft --debug=mnl` shows.
    expect([3, 4, 5, 6, 7].map((t) => a.get(t)!.readUInt32BE(0))).toEqual([0xb, 4, 4, 0xffffff00, 0]);
    expect(attrMap(attrs(a.get(9)!)).get(1)!.readUInt32BE(0)).toBe(2);
    const id = a.get(10)!.readUInt32BE(0);
    const els = msgs.find((m) => m.type === nftType(NFT_MSG_NEWSETELEM))!;
    expect(messageAttrs(els).get(4)!.readUInt32BE(0)).toBe(id);
    expect(elementsOf(els)).toEqual(['0x00000000 : goto -> endpoint-A 0', '0x00000001 : goto -> endpoint-B 0']);
    // The rule's lookup names the same set id.
    const rule = msgs.find((m) => m.type === nftType(NFT_MSG_NEWRULE))!;
    expect(rule.data.includes(Buffer.from('__map%d\0'))).toBe(true);
  });

  it('source ranges: an anonymous interval set, as nft encodes it (leading 0.0.0.0 end, end + 1 flagged)', () => {
    const msgs = encodeOne((b) => b.addRule('fw', 'ip saddr != { 1.2.3.0/24, 5.6.7.8 } drop'));
    const set = messageAttrs(msgs.find((m) => m.type === nftType(NFT_MSG_NEWSET))!);
    expect(set.get(3)!.readUInt32BE(0)).toBe(7);
    expect(elementsOf(msgs.find((m) => m.type === nftType(NFT_MSG_NEWSETELEM))!)).toEqual([
      '0x00000000 :  1',
      '0x00030201 :  0',
      '0x00040201 :  1',
      '0x08070605 :  0',
      '0x09070605 :  1',
    ]);
  });

  it('fixed-map keys use the concatenation layout (every component padded to 4 bytes)', () => {
    expect(dataWords(elementKeyBytes('10.96.0.1 . tcp . 80')!)).toBe('0x0100600a 0x00000006 0x00005000');
    expect(dataWords(elementKeyBytes('tcp . 30080')!)).toBe('0x00000006 0x00008075');
    expect(dataWords(elementKeyBytes('10.96.0.1')!)).toBe('0x0100600a');
    expect(elementKeyBytes('10.96.0.1 . icmp . 80')).toBeUndefined();
  });

  it('map elements carry their verdict and comment (nft: "element 0100600a 00000006 00005000 : goto -> endpoint-A 0 [end] userdata = { \\x00\\x0ans/a:http\\x00 }")', () => {
    const msgs = encodeOne((b) =>
      b.elements(true, [
        { set: 'service-ips', key: '10.96.0.1 . tcp . 80', value: 'goto endpoint-A', comment: 'ns/a:http' },
        { set: 'service-nodeports', key: 'tcp . 30080', value: 'drop' },
      ]),
    );
    const els = msgs.filter((m) => m.type === nftType(NFT_MSG_NEWSETELEM));
    expect(els.map(elementsOf)).toEqual([['0x0100600a 0x00000006 0x00005000 : goto -> endpoint-A 0 "\\u0000\\nns/a:http\\u0000"'], ['0x00000006 0x00008075 : drop 0']]);
  });

  it('affinity set: dynamic,timeout, ipv4_addr key, timeout in ms, nft user data', () => {
    const msgs = encodeOne((b) => b.addAffinitySet({ name: 'affinity-A', timeoutSeconds: 10800 }));
    const a = messageAttrs(msgs.find((m) => m.type === nftType(NFT_MSG_NEWSET))!);
    expect(a.get(3)!.readUInt32BE(0)).toBe(0x30);
    expect(a.get(4)!.readUInt32BE(0)).toBe(7);
    expect(a.get(11)!.readBigUInt64BE(0)).toBe(10_800_000n);
    expect(a.get(13)!.toString('hex')).toBe('000402000000');
  });
});

describe('nftables netlink batch framing', () => {
  it('BATCH_BEGIN/END around the messages; echo on the first (for the generation id), ack on the last only', () => {
    const b = new NftBatch(7);
    b.addChain('a');
    b.flushChain('a');
    b.elements(false, [{ set: 'cluster-ips', key: '10.0.0.1', value: '' }]);
    const enc = b.finish()!;
    const msgs = splitMessages(enc.bytes);
    expect(msgs.map((m) => m.type)).toEqual([0x10, nftType(3), nftType(8), nftType(14), 0x11]);
    expect(msgs.map((m) => m.seq)).toEqual([7, 8, 9, 10, 11]);
    expect(msgs.map((m) => m.flags & (NLM_F_ACK | NLM_F_ECHO))).toEqual([0, NLM_F_ECHO, 0, NLM_F_ACK, 0]);
    // BATCH_BEGIN: res_id = NFNL_SUBSYS_NFTABLES, big-endian.
    expect(msgs[0]!.data.readUInt16BE(18)).toBe(10);
    expect(enc.lastSeq).toBe(10);
    expect(enc.describe(9)).toBe('flush chain ip kube-proxy a');
    expect(enc.describe(10)).toBe('delete element ip kube-proxy cluster-ips { 10.0.0.1 }');
  });

  it('an empty batch is no batch', () => {
    expect(new NftBatch(1).finish()).toBeUndefined();
  });
});

describe('nftables netlink encoder: concrete anonymous-set names', () => {
  const vmap = (n: number): string => `numgen random mod 2 vmap { 0 : goto endpoint-${n}a, 1 : goto endpoint-${n}b }`;

  it('names each anonymous set from the writer prefix, creates it exclusively, sends its elements by id only', () => {
    const b = new NftBatch(1, { prefix: 'mikc3s1k0x', next: 7 });
    b.addRule('svc-1', vmap(1));
    b.addRule('svc-2', vmap(2));
    b.addRule('fw', 'ip saddr != { 1.2.3.0/24 } drop');
    const batch = b.finish()!;
    const msgs = splitMessages(batch.bytes);
    const sets = msgs.filter((m) => m.type === nftType(NFT_MSG_NEWSET));
    expect(sets.map((m) => messageAttrs(m).get(2)!.toString('latin1'))).toEqual(['__mapmikc3s1k0x7\0', '__mapmikc3s1k0x8\0', '__setmikc3s1k0x9\0']);
    for (const m of sets) {
      expect(m.flags & NLM_F_EXCL).toBe(NLM_F_EXCL);
      expect(batch.anonSetSeq(m.seq)).toBe(true);
      // Still flagged anonymous (nft lists it inline) and constant.
      expect(messageAttrs(m).get(3)!.readUInt32BE(0) & 0x3).toBe(0x3);
    }
    const elems = msgs.filter((m) => m.type === nftType(NFT_MSG_NEWSETELEM));
    expect(elems.map((m) => [messageAttrs(m).has(2), messageAttrs(m).get(4)!.readUInt32BE(0)])).toEqual(sets.map((m) => [false, messageAttrs(m).get(10)!.readUInt32BE(0)]));
    const rules = msgs.filter((m) => m.type === nftType(NFT_MSG_NEWRULE));
    expect(rules.map((m) => m.data.includes(Buffer.from('__mapmikc3s1k0x7\0')))).toEqual([true, false, false]);
    expect(rules.map((m) => batch.anonSetSeq(m.seq))).toEqual([false, false, false]);
  });

  it('gives every writer its own prefix, never one the kernel would produce from __map%d', () => {
    const now = Date.UTC(2026, 10, 30, 22, 0, 0);
    const a = anonNamePrefix(now);
    const b = anonNamePrefix(now);
    expect(a).not.toBe(b);
    expect(a.startsWith(now.toString(36))).toBe(true);
    for (const p of [a, b, anonNamePrefix(0)]) expect(`__map${p}12`).not.toMatch(/^__map\d+$/);
  });

  /** A transport that rejects the first NEWSET of every batch with `errno`, as the kernel does on a taken name. */
  function rejectingTransport(errno: number): { sent: Buffer[]; transport: NetlinkTransport } {
    const sent: Buffer[] = [];
    const exchange = async (bytes: Buffer): Promise<NlMessage[]> => {
      sent.push(bytes);
      const set = splitMessages(bytes).find((m) => m.type === nftType(NFT_MSG_NEWSET))!;
      const err = Buffer.alloc(36);
      err.writeUInt32LE(36, 0);
      err.writeUInt16LE(2 /* NLMSG_ERROR */, 4);
      err.writeUInt32LE(set.seq, 8);
      err.writeInt32LE(-errno, 16);
      set.data.copy(err, 20, 0, 16);
      return [{ type: 2, flags: 0, seq: set.seq, data: err }];
    };
    return { sent, transport: { exchange, close: () => {} } as unknown as NetlinkTransport };
  }

  const setNames = (bytes: Buffer): string[] =>
    splitMessages(bytes).filter((m) => m.type === nftType(NFT_MSG_NEWSET)).map((m) => messageAttrs(m).get(2)!.toString('latin1'));

  it('moves to a fresh prefix when the kernel says a name is taken (EEXIST), so the steps can be encoded again', async () => {
    const { sent, transport } = rejectingTransport(constants.errno.EEXIST);
    const nl = new NftNetlink(transport, { concreteAnonNames: true });
    const encode = (): EncodedBatch => {
      const b = nl.newBatch();
      b.addRule('svc-1', vmap(1));
      return b.finish()!;
    };
    await expect(nl.commit(encode())).rejects.toBeInstanceOf(AnonSetNameClashError);
    await expect(nl.commit(encode())).rejects.toBeInstanceOf(AnonSetNameClashError);
    const [first, second] = sent.map(setNames);
    expect(first![0]).toMatch(/^__map[0-9a-z]+x0\0$/);
    expect(second![0]).toMatch(/^__map[0-9a-z]+x0\0$/);
    expect(second).not.toEqual(first);
  });

  it('treats other refusals of an anonymous set as plain errors, and template names never as a clash', async () => {
    const other = rejectingTransport(constants.errno.EINVAL);
    const nl = new NftNetlink(other.transport, { concreteAnonNames: true });
    const b = nl.newBatch();
    b.addRule('svc-1', vmap(1));
    const err = await nl.commit(b.finish()!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NftError);
    expect(err).not.toBeInstanceOf(AnonSetNameClashError);

    const template = rejectingTransport(constants.errno.ENFILE);
    const tnl = new NftNetlink(template.transport);
    const tb = tnl.newBatch();
    tb.addRule('svc-1', vmap(1));
    const terr = await tnl.commit(tb.finish()!).catch((e: unknown) => e);
    expect(terr).toBeInstanceOf(NftError);
    expect(terr).not.toBeInstanceOf(AnonSetNameClashError);
    expect(setNames(template.sent[0]!)).toEqual(['__map%d\0']);
  });
});
