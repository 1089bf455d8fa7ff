/**
 * Builds the transports named in PUSH_TRANSPORT and routes each message to the first one that
 * serves the device's platform — `apns,fcm` sends iOS devices through APNs and the rest through
 * FCM. A device no configured transport serves fails without retry.
 */
import type { Logger } from 'pino';
import type { Env } from '../../config/env.ts';
import { ApnsTransport, loadApnsKey } from './apns.ts';
import { FcmTransport, loadServiceAccount } from './fcm.ts';
import { LogTransport } from './log.ts';
import { PushDeliveryError, type Platform, type PushMessage, type PushTransport } from './types.ts';
import { WebhookTransport } from './webhook.ts';

const ALL: readonly Platform[] = ['ios', 'android', 'web'];

interface Route {
  platforms: readonly Platform[];
  transport: PushTransport;
}

export class RoutingTransport implements PushTransport {
  readonly name: string;
  constructor(private readonly routes: Route[]) {
    this.name = routes.map((r) => r.transport.name).join(',');
  }

  async send(m: PushMessage): Promise<void> {
    const route = this.routes.find((r) => r.platforms.includes(m.device.platform));
    if (!route) throw new PushDeliveryError(`no push transport serves ${m.device.platform}`, { retryable: false });
    await route.transport.send(m);
  }

  async close(): Promise<void> {
    await Promise.all(this.routes.map((r) => r.transport.close?.()));
  }
}

/** loadEnv has already checked that each named transport has its settings. */
export function createTransport(env: Env, log: Logger): RoutingTransport {
  const need = (value: string | undefined, name: string) => {
    if (value === undefined) throw new Error(`${name} is required by PUSH_TRANSPORT=${env.PUSH_TRANSPORT}`);
    return value;
  };
  const routes = env.PUSH_TRANSPORT.split(',').map((name): Route => {
    switch (name) {
      case 'fcm':
        return {
          platforms: ALL,
          transport: new FcmTransport({
            account: loadServiceAccount(need(env.FCM_SERVICE_ACCOUNT_JSON, 'FCM_SERVICE_ACCOUNT_JSON')),
            baseUrl: env.FCM_BASE_URL,
            tokenUrl: env.FCM_TOKEN_URL,
            timeoutMs: env.PUSH_TIMEOUT_MS,
          }),
        };
      case 'apns':
        return {
          platforms: ['ios'],
          transport: new ApnsTransport({
            key: loadApnsKey(need(env.APNS_KEY_PEM, 'APNS_KEY_PEM')),
            keyId: need(env.APNS_KEY_ID, 'APNS_KEY_ID'),
            teamId: need(env.APNS_TEAM_ID, 'APNS_TEAM_ID'),
            topic: need(env.APNS_TOPIC, 'APNS_TOPIC'),
            baseUrl: env.APNS_BASE_URL,
            timeoutMs: env.PUSH_TIMEOUT_MS,
          }),
        };
      case 'webhook':
        return {
          platforms: ALL,
          transport: new WebhookTransport({
            url: need(env.WEBHOOK_URL, 'WEBHOOK_URL'),
            secret: need(env.WEBHOOK_SECRET, 'WEBHOOK_SECRET'),
            timeoutMs: env.PUSH_TIMEOUT_MS,
          }),
        };
      default:
        return { platforms: ALL, transport: new LogTransport(log) };
    }
  });
  return new RoutingTransport(routes);
}
