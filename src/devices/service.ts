/**
 * A member's push devices (platform + provider token). A token identifies one app install, so
 * (platform, token) is unique: registering a token another member had moves it to the caller —
 * the app was signed into another account — and registering it again changes nothing.
 */
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { Platform } from '../push/transports/types.ts';

export interface Device {
  id: number;
  platform: Platform;
  token: string;
  createdAt: string;
}

type DeviceRow = Omit<Device, 'createdAt'> & { createdAt: Date };

const toDevice = (r: DeviceRow): Device => ({ ...r, createdAt: r.createdAt.toISOString() });

export class DeviceService {
  constructor(private readonly sql: Sql) {}

  async register(userId: number, platform: Platform, token: string): Promise<Device> {
    const [row] = await this.sql<DeviceRow[]>`
      INSERT INTO devices (user_id, platform, token) VALUES (${userId}, ${platform}, ${token})
      ON CONFLICT (platform, token) DO UPDATE SET user_id = EXCLUDED.user_id
      RETURNING id, platform, token, created_at AS "createdAt"`;
    return toDevice(row);
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
