/**
 * Receiver info at rest in Postgres: envelopes written to a table leave no plaintext fragment
 * anywhere in the database; key rotation (src/crypto/rotation.ts, npm run rotate-keys) moves every
 * old envelope to the new first key — readable with it alone afterwards — leaves rows already
 * current alone, reports a value it cannot open by row and column (never by value), does nothing
 * the second time, and never overwrites a value written meanwhile.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEncryptionKeys } from '../../src/crypto/keyring.ts';
import { ReceiverCipher, type ReceiverInfo } from '../../src/crypto/receiver.ts';
import { rotateEnvelopes, type RotationTarget } from '../../src/crypto/rotation.ts';
import { childEnv, spawnTs } from '../crash/procs.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectNoPlaintext } from './no-plaintext.ts';

const OLD = `old:${randomBytes(32).toString('base64')}`;
const NEW = `new:${randomBytes(32).toString('base64')}`;
const before = new ReceiverCipher(parseEncryptionKeys(OLD));
const during = new ReceiverCipher(parseEncryptionKeys(`${NEW},${OLD}`));
const after = new ReceiverCipher(parseEncryptionKeys(NEW));

const TABLE: RotationTarget = { table: 'test_receivers', idColumn: 'id', columns: ['name', 'phone', 'address'], aadColumn: 'order_no' };

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext();
  await ctx.sql`CREATE TABLE test_receivers (id bigserial PRIMARY KEY, order_no text NOT NULL, name text, phone text, address text)`;
});
afterAll(async () => ctx?.close());

function receiver(i: number): ReceiverInfo {
  return { name: `Zhao Liu ${i}`, phone: `139${String(87654321 + i).padStart(8, '0')}`, address: `Lane ${i} Huaihai Road, Xuhui District` };
}

async function insert(cipher: ReceiverCipher, rows: Array<{ orderNo: string; r: ReceiverInfo; noAddress?: boolean }>) {
  for (const { orderNo, r, noAddress } of rows) {
    const s = cipher.encryptReceiver(r, orderNo);
    await ctx.sql`INSERT INTO test_receivers (order_no, name, phone, address) VALUES (${orderNo}, ${s.name}, ${s.phone}, ${noAddress ? null : s.address})`;
  }
}

async function all() {
  return ctx.sql<Array<{ id: number; orderNo: string; name: string; phone: string; address: string | null }>>`
    SELECT id, order_no AS "orderNo", name, phone, address FROM test_receivers ORDER BY id`;
}

describe('receiver info in Postgres', () => {
  it('leaves no plaintext fragment anywhere in the database', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({ orderNo: `PM${1000 + i}`, r: receiver(i), noAddress: i % 7 === 0 }));
    await insert(before, rows);
    await expectNoPlaintext(ctx.sql, ['Zhao Liu', '1398765', '87654', 'Huaihai', 'Xuhui', 'Lane 1']);
    const stored = await all();
    expect(stored.every((r) => r.name.startsWith('v1.old.') && r.phone.startsWith('v1.old.'))).toBe(true);
  });

  it('rotates every old envelope to the new first key, readable with the new key alone; a second run does nothing', async () => {
    await insert(during, [{ orderNo: 'PM2000', r: receiver(99) }]);
    const current = (await all()).at(-1)!;
    const report = await rotateEnvelopes(ctx.sql, during, [TABLE], { batch: 7 });
    expect(report).toEqual([{ table: 'test_receivers', rows: 30, values: 30 * 3 - 5, failed: [] }]);
    const rows = await all();
    for (const [i, r] of rows.entries()) {
      for (const v of [r.name, r.phone, r.address]) if (v !== null) expect(v.startsWith('v1.new.')).toBe(true);
      const opened = { name: after.decrypt(r.name, r.orderNo), phone: after.decrypt(r.phone, r.orderNo) };
      expect(opened).toEqual(i < 30 ? { name: receiver(i).name, phone: receiver(i).phone } : { name: receiver(99).name, phone: receiver(99).phone });
      if (r.address !== null) expect(after.decrypt(r.address, r.orderNo)).toBe(i < 30 ? receiver(i).address : receiver(99).address);
    }
    expect(rows.at(-1)).toEqual(current);
    expect(await rotateEnvelopes(ctx.sql, during, [TABLE])).toEqual([{ table: 'test_receivers', rows: 0, values: 0, failed: [] }]);
    await expectNoPlaintext(ctx.sql, ['Zhao Liu', '1398765', 'Huaihai']);
  });

  it('reports a value it cannot open by row and column, never by value, and rotates the rest of the row', async () => {
    const [{ id }] = await ctx.sql<Array<{ id: number }>>`
      INSERT INTO test_receivers (order_no, name, phone, address)
      VALUES ('PM3000', ${before.encrypt('Sun Qi', 'PM3000')}, ${before.encrypt('13700001111', 'PM3001')}, 'Plain Street 9')
      RETURNING id`;
    const report = await rotateEnvelopes(ctx.sql, during, [TABLE]);
    expect(report).toEqual([
      {
        table: 'test_receivers',
        rows: 1,
        values: 1,
        failed: [
          { id: String(id), column: 'phone', problem: 'authentication_failed' },
          { id: String(id), column: 'address', problem: 'malformed' },
        ],
      },
    ]);
    expect(JSON.stringify(report)).not.toMatch(/Sun Qi|13700001111|Plain Street/);
    const [row] = await ctx.sql`SELECT name, address FROM test_receivers WHERE id = ${id}`;
    expect(after.decrypt(row.name, 'PM3000')).toBe('Sun Qi');
    expect(row.address).toBe('Plain Street 9');
    await ctx.sql`DELETE FROM test_receivers WHERE id = ${id}`;
  });

  it('never overwrites a value written while it runs (compare-and-set)', async () => {
    await insert(before, Array.from({ length: 40 }, (_, i) => ({ orderNo: `PM4${i}`, r: receiver(i) })));
    // a writer seals new phones with the new key while the rotation goes on
    const writer = (async () => {
      for (let i = 0; i < 40; i += 3) {
        await ctx.sql`UPDATE test_receivers SET phone = ${during.encrypt(`phone-${i}`, `PM4${i}`)} WHERE order_no = ${`PM4${i}`}`;
      }
    })();
    const [report] = await rotateEnvelopes(ctx.sql, during, [TABLE], { batch: 4 });
    await writer;
    expect(report.failed).toEqual([]);
    for (const r of await ctx.sql<Array<{ orderNo: string; phone: string }>>`
      SELECT order_no AS "orderNo", phone FROM test_receivers WHERE order_no LIKE 'PM4%'`) {
      const i = Number(r.orderNo.slice(3));
      expect(after.decrypt(r.phone, r.orderNo)).toBe(i % 3 === 0 ? `phone-${i}` : receiver(i).phone);
    }
  });

  it('npm run rotate-keys runs over the listed columns and says which key is current', async () => {
    const cli = spawnTs('rotate-keys', 'src/cli/rotate-keys.ts', [], childEnv(ctx.env, { ENCRYPTION_KEYS: `${NEW},${OLD}` }));
    await new Promise<void>((resolve) => cli.proc.once('exit', () => resolve()));
    expect(cli.proc.exitCode, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/rotate-keys: current key "new"/);
  });
});
