/**
 * Receiver info never reaches the logs: the API's logger and the workers' redact a receiver object
 * and the receiver fields (camelCase and snake_case) at the top of a line and nested (an order, an
 * error carrying one, a request body), whether the values are plaintext or envelopes. The
 * request id and the rest of the line stay.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { parseEncryptionKeys } from '../../src/crypto/keyring.ts';
import { ReceiverCipher } from '../../src/crypto/receiver.ts';
import { createLogger } from '../../workers/logger.ts';
import { createTestDatabase, dropTestDatabase, envFor } from '../support/context.ts';

const RECEIVER = { name: 'Qian Ba', phone: '13612349876', address: '88 Nanjing West Road' };
const cipher = new ReceiverCipher(parseEncryptionKeys(`k1:${randomBytes(32).toString('base64')}`));
const SEALED = cipher.encryptReceiver(RECEIVER, 'PM77');
const SECRETS = [...Object.values(RECEIVER), ...Object.values(SEALED), '3612349', 'Nanjing', 'Qian Ba'];

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Everything a careless caller might log that holds receiver info. */
function logEverything(log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void }) {
  log.info({ receiver: RECEIVER }, 'top-level receiver');
  log.info({ order: { id: 'PM77', receiver: SEALED, status: 'paid' } }, 'order with sealed receiver');
  log.info({ order: { id: 'PM77', receiverName: RECEIVER.name, receiverPhone: RECEIVER.phone, receiverAddress: RECEIVER.address } }, 'flattened');
  log.info({ row: { id: 1, receiver_name: SEALED.name, receiver_phone: SEALED.phone, receiver_address: SEALED.address } }, 'a row');
  log.info({ req: { body: { items: [], receiver: RECEIVER } } }, 'a request body');
  const err = Object.assign(new Error('payment failed'), { order: { receiver: RECEIVER } });
  log.error({ err }, 'an error carrying an order');
}

function expectRedacted(text: string, lines: number) {
  expect(text.trim().split('\n')).toHaveLength(lines);
  for (const s of SECRETS) expect(text, s).not.toContain(s);
  expect(text).toContain('[Redacted]');
  expect(text).toContain('PM77');
  expect(text).toContain('payment failed');
}

describe('log redaction of receiver info', () => {
  let dbName: string;
  let app: FastifyInstance;
  const capture = new Capture();

  beforeAll(async () => {
    dbName = await createTestDatabase();
    const env = envFor(dbName, `pmt${randomBytes(4).toString('hex')}`, { LOG_LEVEL: 'debug' });
    app = await buildApp(env, { logStream: capture });
  });
  afterAll(async () => {
    await app?.close();
    await dropTestDatabase(dbName);
  });

  it("the API's logger", async () => {
    capture.text = '';
    logEverything(app.log);
    expectRedacted(capture.text, 6);
  });

  it("the API's request logs (a request carrying a receiver, at debug)", async () => {
    capture.text = '';
    const res = await app.inject({ method: 'POST', url: '/v1/points/transfers', payload: { receiver: RECEIVER } });
    expect(res.statusCode).toBe(401);
    expect(capture.text).toContain(res.headers['x-request-id']);
    for (const s of SECRETS) expect(capture.text, s).not.toContain(s);
  });

  it("the workers' logger", () => {
    const out = new Capture();
    logEverything(createLogger('info', 'test', out));
    expectRedacted(out.text, 6);
  });
});
