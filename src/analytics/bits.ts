/**
 * Member sets as bit strings: bit i (counting from the left, from 0) is member id i. Postgres
 * stores them as `bit varying` and ORs or ANDs them in bulk; a set grows with the highest member
 * id, so sets of different days differ in length and are zero-padded to one length (`bit(L)`)
 * before they are combined.
 */
import type { Sql } from '../db/client.ts';

export class MemberBits {
  private readonly bytes: Uint8Array;

  constructor(readonly length: number) {
    // '0' and '1' as character codes: the text form Postgres reads for a bit string
    this.bytes = new Uint8Array(length).fill(48);
  }

  /** A stored set read back as text, widened to `length` bits. */
  static parse(text: string | null | undefined, length: number): MemberBits {
    const bits = new MemberBits(Math.max(length, text?.length ?? 0));
    if (text) for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 49) bits.bytes[i] = 49;
    return bits;
  }

  add(id: number): this {
    if (!Number.isInteger(id) || id < 0 || id >= this.length) throw new RangeError(`member id ${id} outside a set of ${this.length}`);
    this.bytes[id] = 49;
    return this;
  }

  addAll(ids: Iterable<number>): this {
    for (const id of ids) this.add(id);
    return this;
  }

  has(id: number): boolean {
    return this.bytes[id] === 49;
  }

  or(other: MemberBits): this {
    const n = Math.min(this.length, other.length);
    for (let i = 0; i < n; i++) if (other.bytes[i] === 49) this.bytes[i] = 49;
    return this;
  }

  count(): number {
    let n = 0;
    for (const b of this.bytes) if (b === 49) n++;
    return n;
  }

  toString(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.length).toString('latin1');
  }
}

/**
 * `col::bit(L)`: the column's sets zero-padded to L bits (L ≥ 1, an integer the caller computed,
 * never input). bit(L) needs L as a literal type modifier, hence the unsafe fragment.
 */
export function padded(sql: Sql, column: string, length: number) {
  if (!Number.isSafeInteger(length) || length < 1) throw new RangeError(`bad bit length ${length}`);
  if (!/^[a-z_.]+$/.test(column)) throw new RangeError(`bad column ${column}`);
  return sql.unsafe(`${column}::bit(${length})`);
}
