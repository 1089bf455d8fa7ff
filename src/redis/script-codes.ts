/**
 * Business failures come back from Lua as small negative codes; this is the one table that turns
 * them into domain errors (src/errors/domain-error.ts).
 */
import { DomainError } from '../errors/domain-error.ts';

export const ScriptCode = {
  NotHydrated: -1,
  KeyReused: -2,
  DailyLimit: -3,
  Insufficient: -4,
  Aborted: -5,
  AlreadyCheckedIn: -6,
  HoldNotFound: -7,
  HoldSettled: -8,
  HoldExpired: -9,
  GoodsNotFound: -10,
  SaleNotActive: -11,
  LimitExceeded: -12,
  SoldOut: -13,
  GoodsDailyLimit: -14,
  PriceChanged: -15,
  LotteryNotFound: -20,
  LotteryNotActive: -21,
  PrizesGone: -22,
  LotteryCooldown: -23,
  TransferLimit: -30,
  AccountFrozen: -40,
  EarnBurst: -41,
} as const;

export function scriptError(code: number): DomainError {
  switch (code) {
    case ScriptCode.AccountFrozen:
      return new DomainError('ACCOUNT_FROZEN', 'This account is frozen: points and stock cannot move until an admin unfreezes it');
    case ScriptCode.HoldNotFound:
      return new DomainError('HOLD_NOT_FOUND', 'No such hold');
    case ScriptCode.HoldExpired:
      return new DomainError('HOLD_EXPIRED', 'The hold expired: its points are being released');
    case ScriptCode.HoldSettled:
      return new DomainError('HOLD_SETTLED', 'The hold was already settled the other way');
    case ScriptCode.KeyReused:
      return new DomainError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request body');
    case ScriptCode.DailyLimit:
      return new DomainError('DAILY_LIMIT_REACHED', 'The daily limit for this action has been reached');
    case ScriptCode.Insufficient:
      return new DomainError('INSUFFICIENT_POINTS', 'Not enough points available');
    case ScriptCode.Aborted:
      return new DomainError('RESERVATION_EXPIRED', 'The reservation expired before the charge; retry the request');
    case ScriptCode.GoodsNotFound:
      return new DomainError('GOODS_NOT_FOUND', 'No such goods');
    case ScriptCode.SaleNotActive:
      return new DomainError('SALE_NOT_ACTIVE', 'This item is not on sale right now');
    case ScriptCode.LimitExceeded:
      return new DomainError('LIMIT_EXCEEDED', 'Per-member limit for this item reached');
    case ScriptCode.SoldOut:
      return new DomainError('SOLD_OUT', 'Sold out');
    case ScriptCode.GoodsDailyLimit:
      return new DomainError('DAILY_LIMIT_REACHED', "Today's per-member limit for this item reached");
    case ScriptCode.LotteryNotFound:
      return new DomainError('LOTTERY_NOT_FOUND', 'No such lottery');
    case ScriptCode.LotteryNotActive:
      return new DomainError('LOTTERY_NOT_ACTIVE', 'This lottery is not open for draws right now');
    case ScriptCode.PrizesGone:
      return new DomainError('SOLD_OUT', 'Every prize of this lottery has been won');
    default:
      return new DomainError('INTERNAL', `unexpected script code ${code}`);
  }
}
