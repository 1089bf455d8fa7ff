/**
 * Domain errors carry a stable machine code; only src/errors/http-errors.ts maps codes to HTTP.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'EMAIL_TAKEN'
  | 'USERNAME_TAKEN'
  | 'INVALID_CREDENTIALS'
  | 'RULE_NOT_FOUND'
  | 'DAILY_LIMIT_REACHED'
  | 'INSUFFICIENT_POINTS'
  | 'SOLD_OUT'
  | 'LIMIT_EXCEEDED'
  | 'SALE_NOT_ACTIVE'
  | 'GOODS_NOT_FOUND'
  | 'USER_NOT_FOUND'
  | 'REDEMPTION_NOT_FOUND'
  | 'DEVICE_NOT_FOUND'
  | 'PUSH_NOT_FOUND'
  | 'PUSH_NOT_DEAD'
  | 'REFERRAL_CODE_INVALID'
  | 'TASK_NOT_FOUND'
  | 'TASK_KEY_TAKEN'
  | 'IDEMPOTENCY_KEY_REQUIRED'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'RESERVATION_EXPIRED'
  | 'LOTTERY_NOT_FOUND'
  | 'LOTTERY_NOT_ACTIVE'
  | 'LOTTERY_COOLDOWN'
  | 'RATE_LIMITED'
  | 'TOO_MANY_LOGIN_ATTEMPTS'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'SERVICE_UNAVAILABLE'
  | 'ALREADY_CHECKED_IN'
  | 'HOLD_NOT_FOUND'
  | 'ACCOUNT_FROZEN'
  | 'RISK_RULE_INVALID'
  | 'HOLD_SETTLED'
  | 'HOLD_EXPIRED'
  | 'CAMPAIGN_NOT_FOUND'
  | 'RECEIVER_REQUIRED'
  | 'POINTS_TO_USE_INVALID'
  | 'WEBHOOK_SIGNATURE_INVALID'
  | 'WEBHOOK_STALE'
  | 'ORDER_NOT_FOUND'
  | 'PAYMENT_NOT_FOUND'
  | 'COUPON_NOT_FOUND'
  | 'ORDER_STATE_CONFLICT'
  | 'PAYMENT_AMOUNT_MISMATCH'
  | 'COUPON_NOT_ACTIVE'
  | 'TRANSFER_TO_SELF'
  | 'TRANSFER_LIMIT_REACHED'
  | 'PRICE_CHANGED'
  | 'HOT_BUCKETS_LOCKED'
  | 'GOODS_NOT_ORDERABLE'
  | 'CATEGORY_NOT_FOUND'
  | 'CATEGORY_TAKEN'
  | 'CATEGORY_IN_USE'
  | 'GOODS_CAMPAIGN_NOT_FOUND'
  | 'EXPERIMENT_NOT_FOUND'
  | 'EXPERIMENT_KEY_TAKEN'
  | 'EXPERIMENT_NOT_RUNNING'
  | 'EXPERIMENT_STATE_CONFLICT'
  | 'EXPORT_BUSY'
  | 'INTERNAL';

export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    // Business outcomes (sold out, limits) are thrown at flash-sale rates and never debugged by
    // stack: skip capturing one, it is the costliest part of an Error.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'DomainError';
    this.code = code;
    this.details = details;
  }
}
