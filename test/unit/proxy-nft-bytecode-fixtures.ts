// nft 1.0.6's bytecode for every rule form the nftables mode writes (captured with `nft --debug=netlink -f` on
// Debian 12), and berth's encoding of a rule decoded into the same form. Shared by the encoder's unit test and the
// integration test that asks a live nft.
import { decodeExprs } from '../../src/proxy/nftables/netlink/expr.ts';
import { NftBatch, nftType, NFT_MSG_NEWRULE } from '../../src/proxy/nftables/netlink/encode.ts';
import { messageAttrs, splitMessages } from '../../src/proxy/nftables/netlink/nlmsg.ts';

/** `nft --debug=netlink -f` output of nft 1.0.6 for each rule (Debian 12), one expression per line. */
export const NFT_BYTECODE: readonly [string, string[]][] = [
  [
    'ip daddr 10.96.0.1 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade',
    [
      '[ payload load 4b @ network header + 16 => reg 1 ]',
      '[ cmp eq reg 1 0x0100600a ]',
      '[ meta load l4proto => reg 1 ]',
      '[ cmp eq reg 1 0x00000006 ]',
      '[ payload load 2b @ transport header + 2 => reg 1 ]',
      '[ cmp eq reg 1 0x00005000 ]',
      '[ payload load 1b @ network header + 12 => reg 1 ]',
      '[ cmp neq reg 1 0x0000000a ]',
      '[ immediate reg 0 jump -> mark-for-masquerade ]',
    ],
  ],
  [
    'ip daddr 10.96.0.1 udp dport 53 jump mark-for-masquerade',
    [
      '[ payload load 4b @ network header + 16 => reg 1 ]',
      '[ cmp eq reg 1 0x0100600a ]',
      '[ meta load l4proto => reg 1 ]',
      '[ cmp eq reg 1 0x00000011 ]',
      '[ payload load 2b @ transport header + 2 => reg 1 ]',
      '[ cmp eq reg 1 0x00003500 ]',
      '[ immediate reg 0 jump -> mark-for-masquerade ]',
    ],
  ],
  ['ip saddr 10.0.0.0/8 goto endpoint-A comment "short-circuit pod traffic"', ['[ payload load 1b @ network header + 12 => reg 1 ]', '[ cmp eq reg 1 0x0000000a ]', '[ immediate reg 0 goto -> endpoint-A ]']],
  [
    'ip saddr 10.1.0.0/23 goto endpoint-A',
    ['[ payload load 4b @ network header + 12 => reg 1 ]', '[ bitwise reg 1 = ( reg 1 & 0x00feffff ) ^ 0x00000000 ]', '[ cmp eq reg 1 0x0000010a ]', '[ immediate reg 0 goto -> endpoint-A ]'],
  ],
  ['fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"', ['[ fib saddr type => reg 1 ]', '[ cmp eq reg 1 0x00000002 ]', '[ immediate reg 0 jump -> mark-for-masquerade ]']],
  ['ip saddr @affinity-A goto endpoint-A', ['[ payload load 4b @ network header + 12 => reg 1 ]', '[ lookup reg 1 set affinity-A ]', '[ immediate reg 0 goto -> endpoint-A ]']],
  ['numgen random mod 2 vmap { 0 : goto endpoint-A, 1 : goto endpoint-B }', ['[ numgen reg 1 = random mod 2 ]', '[ lookup reg 1 set __map%d dreg 0 ]']],
  ['jump mark-for-masquerade', ['[ immediate reg 0 jump -> mark-for-masquerade ]']],
  ['goto endpoint-B', ['[ immediate reg 0 goto -> endpoint-B ]']],
  ['drop', ['[ immediate reg 0 drop ]']],
  ['ip saddr != { 1.2.3.0/24, 5.6.7.8 } drop', ['[ payload load 4b @ network header + 12 => reg 1 ]', '[ lookup reg 1 set __set%d 0x1 ]', '[ immediate reg 0 drop ]']],
  ['ip saddr != 1.2.3.0/24 drop', ['[ payload load 3b @ network header + 12 => reg 1 ]', '[ cmp neq reg 1 0x00030201 ]', '[ immediate reg 0 drop ]']],
  ['ip saddr 10.1.2.3 jump mark-for-masquerade', ['[ payload load 4b @ network header + 12 => reg 1 ]', '[ cmp eq reg 1 0x0302010a ]', '[ immediate reg 0 jump -> mark-for-masquerade ]']],
  ['update @affinity-A { ip saddr }', ['[ payload load 4b @ network header + 12 => reg 1 ]', '[ dynset update reg_key 1 set affinity-A ]']],
  [
    'meta l4proto tcp dnat to 10.1.2.3:8080',
    ['[ meta load l4proto => reg 1 ]', '[ cmp eq reg 1 0x00000006 ]', '[ immediate reg 1 0x0302010a ]', '[ immediate reg 2 0x0000901f ]', '[ nat dnat ip addr_min reg 1 proto_min reg 2 flags 0x2 ]'],
  ],
  [
    'meta l4proto sctp dnat to 10.1.2.3:8080',
    ['[ meta load l4proto => reg 1 ]', '[ cmp eq reg 1 0x00000084 ]', '[ immediate reg 1 0x0302010a ]', '[ immediate reg 2 0x0000901f ]', '[ nat dnat ip addr_min reg 1 proto_min reg 2 flags 0x2 ]'],
  ],
];

/** A rule's expressions as berth encodes them (template anonymous-set names, as nft), decoded. Throws when not encodable. */
export function ruleBytecode(rule: string): string[] {
  const b = new NftBatch(1);
  if (!b.addRule('c1', rule)) throw new Error(`not encodable: ${rule}`);
  const r = splitMessages(b.finish()!.bytes).find((m) => m.type === nftType(NFT_MSG_NEWRULE))!;
  return decodeExprs(messageAttrs(r).get(4)!);
}
