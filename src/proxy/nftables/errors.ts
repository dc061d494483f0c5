// The nftables mode's write error, shared by the nft text path (executor.ts) and the netlink path (netlink/).
import { InputRejectedError } from '../exec.ts';

/**
 * nft or the kernel rejected a transaction. Text path: `line` is 1-based in the input and `context` holds the lines
 * around it. Netlink path: `line` is undefined and `context` holds the nft statements of the rejected messages.
 */
export class NftError extends InputRejectedError {}

/**
 * The kernel refused one of the writer's anonymous-set names (a set of that name is already in the table). The
 * netlink client has moved on to fresh names when this is thrown: encoding the same steps again does not clash.
 */
export class AnonSetNameClashError extends NftError {}
