/**
 * Log redaction of receiver info (pino `redact`, src/app.ts and workers/logger.ts): a `receiver`
 * object and the receiver fields (camelCase as in the API, snake_case as in rows), at the top of
 * a log line and up to three levels down (`order.receiver`, `err.order.receiver`, `req.body.receiver`).
 * Values are replaced, so neither plaintext nor envelopes reach the logs.
 */
const FIELDS = [
  'receiver',
  'receiverName',
  'receiverPhone',
  'receiverAddress',
  'receiver_name',
  'receiver_phone',
  'receiver_address',
];

const DEPTHS = ['', '*.', '*.*.', '*.*.*.'];

export const RECEIVER_REDACT_PATHS: readonly string[] = DEPTHS.flatMap((prefix) => FIELDS.map((f) => `${prefix}${f}`));
