/**
 * Address lists from configuration (RATE_LIMIT_ALLOWLIST, TRUST_PROXY, REDIS_CLUSTER_NODES): parsing, matching,
 * and the proxy trust rule Fastify applies to X-Forwarded-For.
 */
import { BlockList, isIP } from 'node:net';

/** Comma-separated IPs and CIDRs; throws naming the first entry that is neither. */
export function parseAddressList(spec: string): BlockList {
  const list = new BlockList();
  for (const raw of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [addr, bits, extra] = raw.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : isIP(addr) === 4 ? 'ipv4' : null;
    const max = family === 'ipv6' ? 128 : 32;
    const prefix = Number(bits);
    const badBits = bits !== undefined && (!/^\d+$/.test(bits) || prefix > max);
    if (!family || badBits || extra !== undefined) throw new Error(`"${raw}" is not an IP address or CIDR`);
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, prefix, family);
  }
  return list;
}

const verdicts = new WeakMap<BlockList, Map<string, boolean>>();

/** Whether `ip` is in `list`; answers are remembered per list (up to 10,000 addresses). */
export function isListed(list: BlockList, ip: string | undefined): boolean {
  if (!ip) return false;
  let seen = verdicts.get(list);
  if (!seen) verdicts.set(list, (seen = new Map()));
  let v = seen.get(ip);
  if (v === undefined) {
    v = checkListed(list, ip);
    if (seen.size >= 10_000) seen.clear();
    seen.set(ip, v);
  }
  return v;
}

function checkListed(list: BlockList, ip: string): boolean {
  const v4mapped = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  const version = isIP(v4mapped);
  return version !== 0 && list.check(v4mapped, version === 6 ? 'ipv6' : 'ipv4');
}

/**
 * TRUST_PROXY: `false`, a hop count, or the proxies' addresses. `true` would take the client's
 * own first X-Forwarded-For entry as its address, so it is refused rather than guessed at.
 */
export type ProxyTrust = { kind: 'none' } | { kind: 'hops'; hops: number } | { kind: 'list'; list: BlockList };

export function parseTrustProxy(spec: string): ProxyTrust {
  const s = spec.trim();
  if (s === 'false') return { kind: 'none' };
  if (s === 'true') {
    throw new Error(
      'true would trust every hop, so any client could choose its own address: set the number of proxies ' +
        'in front of the API (e.g. 1) or their addresses or CIDRs (e.g. 10.0.0.0/8)',
    );
  }
  if (/^-?\d+$/.test(s)) {
    const hops = Number(s);
    if (hops < 1) throw new Error(`a hop count must be at least 1 (got ${s}); use false when no proxy is in front`);
    return { kind: 'hops', hops };
  }
  return { kind: 'list', list: parseAddressList(s) };
}

/**
 * The trust function Fastify hands to proxy-addr: hop 0 is the socket peer, then the
 * X-Forwarded-For entries from the right. Fastify ignores a plain number (it cannot check the
 * peer), so a hop count is expressed as this function.
 */
export function proxyTrustFn(trust: ProxyTrust): false | ((address: string, hop: number) => boolean) {
  switch (trust.kind) {
    case 'none':
      return false;
    case 'hops':
      return (_address, hop) => hop < trust.hops;
    case 'list':
      return (address) => isListed(trust.list, address);
  }
}

/** Parses REDIS_CLUSTER_NODES: "host:port,host:port"; throws naming the bad entry. */
export function parseClusterNodes(spec: string): Array<{ host: string; port: number }> {
  const nodes = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((entry) => {
      const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(entry);
      const port = m ? Number(m[2]) : NaN;
      if (!m || port < 1 || port > 65535) throw new Error(`"${entry}" is not host:port`);
      return { host: m[1].replace(/^\[|\]$/g, ''), port };
    });
  if (nodes.length === 0) throw new Error('names no node');
  return nodes;
}
