/**
 * Catalog categories: admin CRUD (each write inside the caller's transaction, audited) and the
 * public list. A slug names a category in URLs and is unique; a category that goods or goods
 * campaigns still point at cannot be deleted (CATEGORY_IN_USE: move or retarget them first).
 */
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { recordAudit } from '../audit/log.ts';

export interface CategoryInput {
  name: string;
  slug: string;
  position?: number;
}

export interface Category {
  id: number;
  name: string;
  slug: string;
  position: number;
  /** goods in the category that are switched on */
  goodsCount: number;
}

const COLUMNS = `c.id, c.name, c.slug, c.position,
  (SELECT count(*) FROM goods g WHERE g.category_id = c.id AND g.active)::bigint AS "goodsCount"`;

const UNIQUE_VIOLATION = '23505';

export class CategoryService {
  constructor(private readonly sql: Sql) {}

  /** Every category, by position then id (the catalog's navigation: tens, not thousands). */
  async list(): Promise<Category[]> {
    return this.sql<Category[]>`SELECT ${this.sql.unsafe(COLUMNS)} FROM categories c ORDER BY c.position, c.id`;
  }

  async get(id: number, db: Sql | Tx = this.sql): Promise<Category> {
    const [row] = await db<Category[]>`SELECT ${db.unsafe(COLUMNS)} FROM categories c WHERE c.id = ${id}`;
    if (!row) throw new DomainError('CATEGORY_NOT_FOUND', `No category with id ${id}`);
    return row;
  }

  async create(tx: Tx, actorId: number, input: CategoryInput): Promise<Category> {
    const [row] = await slugTaken(
      input.slug,
      tx<Array<{ id: number }>>`
        INSERT INTO categories (name, slug, position) VALUES (${input.name}, ${input.slug}, ${input.position ?? 0})
        RETURNING id`,
    );
    await audit(tx, actorId, 'category.create', row.id, { ...input });
    return this.get(row.id, tx);
  }

  async update(tx: Tx, actorId: number, id: number, patch: Partial<CategoryInput>): Promise<Category> {
    const [cur] = await tx<Array<{ id: number; name: string; slug: string; position: number }>>`
      SELECT id, name, slug, position FROM categories WHERE id = ${id} FOR UPDATE`;
    if (!cur) throw new DomainError('CATEGORY_NOT_FOUND', `No category with id ${id}`);
    const slug = patch.slug ?? cur.slug;
    await slugTaken(
      slug,
      tx`UPDATE categories SET name = ${patch.name ?? cur.name}, slug = ${slug}, position = ${patch.position ?? cur.position},
           updated_at = now() WHERE id = ${id}`,
    );
    await audit(tx, actorId, 'category.update', id, { ...patch });
    return this.get(id, tx);
  }

  async remove(tx: Tx, actorId: number, id: number): Promise<{ id: number; deleted: true }> {
    const [cur] = await tx`SELECT id FROM categories WHERE id = ${id} FOR UPDATE`;
    if (!cur) throw new DomainError('CATEGORY_NOT_FOUND', `No category with id ${id}`);
    const [use] = await tx<Array<{ goods: number; campaigns: number }>>`
      SELECT (SELECT count(*) FROM goods WHERE category_id = ${id})::bigint AS goods,
             (SELECT count(*) FROM goods_campaigns WHERE category_id = ${id})::bigint AS campaigns`;
    if (use.goods > 0 || use.campaigns > 0) {
      throw new DomainError(
        'CATEGORY_IN_USE',
        `Category ${id} still has ${use.goods} goods and ${use.campaigns} goods campaigns: move or retarget them first`,
      );
    }
    await tx`DELETE FROM categories WHERE id = ${id}`;
    await audit(tx, actorId, 'category.delete', id, {});
    return { id, deleted: true };
  }
}

/** A taken slug is a 409 the admin can act on, not a 500. */
async function slugTaken<T>(slug: string, query: Promise<T>): Promise<T> {
  try {
    return await query;
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
      throw new DomainError('CATEGORY_TAKEN', `The slug "${slug}" is taken by another category`);
    }
    throw err;
  }
}

async function audit(tx: Tx, actorId: number, action: string, id: number, data: Record<string, unknown>): Promise<void> {
  await recordAudit(tx, { actorId, action, targetType: 'category', targetId: String(id), data });
}
