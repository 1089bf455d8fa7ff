/**
 * Members and admins: registration (argon2id hashes), login, and the admin bootstrap.
 */
import { hash, verify, Algorithm } from '@node-rs/argon2';
import { DomainError } from '../errors/domain-error.ts';
import type { Sql, Tx } from '../db/client.ts';

export interface User {
  id: number;
  username: string;
  email: string;
  role: 'member' | 'admin';
}

// OWASP's argon2id floor: 19 MiB, 2 passes, 1 lane.
const ARGON = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON);
}

// Verifying against a fixed hash when the email is unknown keeps login timing uniform.
const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$ZFgqRbbz7SMh/0OIZKsKgg$DnObYDpo0jNQ4JAgZGPNjGUkYcAqM2IKygNVDKz/Gfk';

export class AuthService {
  constructor(private readonly sql: Sql) {}

  /** `inTx` runs inside the transaction that creates the member (referral code, referral). */
  async register(
    username: string,
    email: string,
    password: string,
    role: User['role'] = 'member',
    inTx?: (tx: Tx, user: User) => Promise<void>,
  ): Promise<User> {
    const passwordHash = await hashPassword(password);
    try {
      return await this.sql.begin(async (tx) => {
        const [user] = await tx<User[]>`
          INSERT INTO users (username, email, password_hash, role)
          VALUES (${username}, ${email.toLowerCase()}, ${passwordHash}, ${role})
          RETURNING id, username, email, role`;
        await tx`INSERT INTO point_accounts (user_id) VALUES (${user.id})`;
        await inTx?.(tx, user);
        return user;
      });
    } catch (err) {
      const e = err as { code?: string; constraint_name?: string };
      if (e.code === '23505' && e.constraint_name === 'users_email_key') {
        throw new DomainError('EMAIL_TAKEN', 'An account with this email already exists');
      }
      if (e.code === '23505' && e.constraint_name === 'users_username_key') {
        throw new DomainError('USERNAME_TAKEN', 'This username is taken');
      }
      throw err;
    }
  }

  async login(email: string, password: string): Promise<User> {
    const [row] = await this.sql<Array<User & { passwordHash: string }>>`
      SELECT id, username, email, role, password_hash AS "passwordHash" FROM users WHERE email = ${email.toLowerCase()}`;
    const ok = await verify(row?.passwordHash ?? DUMMY_HASH, password).catch(() => false);
    if (!row || !ok) throw new DomainError('INVALID_CREDENTIALS', 'Wrong email or password');
    return { id: row.id, username: row.username, email: row.email, role: row.role };
  }

  /** Makes sure the configured admin exists and has the admin role and password. */
  async ensureAdmin(username: string, email: string, password: string): Promise<User> {
    const passwordHash = await hashPassword(password);
    return this.sql.begin(async (tx) => {
      const [user] = await tx<User[]>`
        INSERT INTO users (username, email, password_hash, role)
        VALUES (${username}, ${email.toLowerCase()}, ${passwordHash}, 'admin')
        ON CONFLICT (email) DO UPDATE SET role = 'admin', password_hash = EXCLUDED.password_hash
        RETURNING id, username, email, role`;
      await tx`INSERT INTO point_accounts (user_id) VALUES (${user.id}) ON CONFLICT DO NOTHING`;
      return user;
    });
  }
}
