/**
 * Deletes every key under a prefix (SCAN + UNLINK, in pages): for tests, benches and lifecycle
 * tools that own a prefix. Never used on a live deployment's prefix. SCAN walks one node, so on a
 * cluster every master is scanned, and its keys (many slots) are unlinked one per command.
 */
import { readyMasters, type RedisClient } from './client.ts';

export async function deleteKeys(redis: RedisClient, prefix: string): Promise<void> {
  for (const node of await readyMasters(redis)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
      cursor = next;
      if (found.length === 0) continue;
      if (node === redis) await node.unlink(...found);
      else await found.reduce((p, key) => p.unlink(key), node.pipeline()).exec();
    } while (cursor !== '0');
  }
}
