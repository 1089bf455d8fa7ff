/**
 * The contract every push transport implements, and the one error type they throw. The push
 * worker only looks at `retryable` and `deadToken`: whether BullMQ should try again, and whether
 * the device registration must be dropped because the provider says the token no longer exists.
 */
export type Platform = 'ios' | 'android' | 'web';

export interface PushMessage {
  device: { platform: Platform; token: string };
  title: string;
  body: string;
  /** String values only: FCM's data map and most webhook receivers accept nothing else. */
  data: Record<string, string>;
}

export interface PushTransport {
  readonly name: string;
  send(message: PushMessage): Promise<void>;
  /** Releases sockets or sessions the transport keeps open between sends. */
  close?(): Promise<void>;
}

export class PushDeliveryError extends Error {
  readonly retryable: boolean;
  readonly deadToken: boolean;
  readonly status?: number;
  constructor(message: string, o: { retryable: boolean; deadToken?: boolean; status?: number }) {
    super(message);
    this.name = 'PushDeliveryError';
    this.retryable = o.retryable;
    this.deadToken = o.deadToken ?? false;
    this.status = o.status;
  }
}

/**
 * The usual HTTP reading when a provider gives nothing more specific: throttling and server
 * errors pass, other client errors will fail the same way next time.
 */
export function errorForStatus(transport: string, status: number, detail: string): PushDeliveryError {
  const retryable = status === 408 || status === 429 || status >= 500;
  return new PushDeliveryError(`${transport} ${status}: ${detail}`.slice(0, 500), { retryable, status });
}

/** Network failures and timeouts (fetch rejects, HTTP/2 stream errors) are worth another try. */
export function networkError(transport: string, err: unknown): PushDeliveryError {
  const cause = err instanceof Error ? err.message : String(err);
  return new PushDeliveryError(`${transport}: ${cause}`.slice(0, 500), { retryable: true });
}
