/**
 * A member's push devices (platform + provider token). A token identifies one app install, so
 * (platform, token) is unique: registering a token another member had moves it to the caller —
 * the app was signed into another account — and registering it again refreshes its registration
 * time. A member keeps at most `maxPerMember` devices (every push fans out to all of them):
 * registering one more removes the member's least recently registered device.
 */
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { Platform } from '../push/transports/types.ts';
import { assessDevice } from '../risk/assess.ts';
import type { RequestContext, RiskRules } from '../risk/rules.ts';

export interface Device {
  id: number;
  platform: Platform;
  token: string;
  createdAt: string;
}

type DeviceRow = Omit<Device, 'createdAt'> & { createdAt: Date };

const toDevice = (r: DeviceRow): Device => ({ ...r, createdAt: r.createdAt.toISOString() });

export class DeviceService {
  constructor(
    private readonly sql: Sql,
    private readonly o: { maxPerMember: number; risk?: RiskRules },
  ) {}

  async register(userId: number, platform: Platform, token: string, ctx: RequestContext = {}): Promise<Device> {
    return this.sql.begin(async (tx) => {
      // one registration per member at a time, or two racing ones could each keep the cap and
      // together exceed it; the member's row is the lock (it exists: the token came from it)
      await tx`SELECT 1 FROM users WHERE id = ${userId} FOR NO KEY UPDATE`;
      // a token another account registered: DEVICE_SHARING (before the token moves to this member)
      if (this.o.risk) await assessDevice(tx, userId, platform, token, ctx, this.o.risk);
      const [row] = await tx<DeviceRow[]>`
        INSERT INTO devices (user_id, platform, token) VALUES (${userId}, ${platform}, ${token})
        ON CONFLICT (platform, token) DO UPDATE SET user_id = EXCLUDED.user_id, created_at = now()
        RETURNING id, platform, token, created_at AS "createdAt"`;
      await tx`
        DELETE FROM devices WHERE user_id = ${userId} AND id NOT IN (
          SELECT id FROM devices WHERE user_id = ${userId} ORDER BY created_at DESC, id DESC LIMIT ${this.o.maxPerMember})`;
      return toDevice(row);
    });
  }

  async list(userId: number): Promise<Device[]> {
    const rows = await this.sql<DeviceRow[]>`
      SELECT id, platform, token, created_at AS "createdAt" FROM devices WHERE user_id = ${userId} ORDER BY id`;
    return rows.map(toDevice);
  }

  /** Another member's device is reported as missing, not forbidden: ids are not to be probed. */
  async remove(userId: number, id: number): Promise<void> {
    const rows = await this.sql`DELETE FROM devices WHERE id = ${id} AND user_id = ${userId} RETURNING id`;
    if (rows.length === 0) throw new DomainError('DEVICE_NOT_FOUND', `Device ${id} not found`);
  }
}
