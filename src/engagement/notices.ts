/**
 * Pushes that follow what the spine records: a tier upgrade (an op carrying tierFrom, seen by the
 * persist worker), a redemption's exchange confirmation (its spend op, once persisted) and a
 * campaign's start (claimed by the reminders role). Each is recorded once whatever the
 * redelivery: tier pushes by their dedupe key (member, tier), exchange confirmations by the
 * redemption's id, campaign broadcasts by their broadcast id (the campaign) — a batch or a run
 * done twice sends nothing twice.
 */
import type { Sql } from '../db/client.ts';
import type { Op } from '../points/op.ts';
import type { Broadcasts } from '../push/broadcast.ts';
import type { PushService } from '../push/service.ts';
import type { CampaignService } from './campaigns.ts';
import type { EngagementConfig } from './config.ts';

/** The persist worker's follow-up of a committed batch (workers/persist.ts afterCommit). */
export async function notifyPersisted(ops: Op[], sql: Sql, pushes: PushService, config: EngagementConfig): Promise<void> {
  await notifyTierUpgrades(ops, pushes, config);
  await notifyExchanges(ops, sql, pushes);
}

/**
 * An `exchange_confirmation` push for each catalog redemption in the batch, after it is persisted,
 * all in one bulk enqueue (a flash sale's batch carries hundreds); deduplicated by redemption id.
 */
export async function notifyExchanges(ops: Op[], sql: Sql, pushes: PushService): Promise<number> {
  const redeemed = ops.filter((o) => o.kind === 'spend' && o.bizType === 'redemption' && o.goodsId !== undefined);
  if (redeemed.length === 0) return 0;
  const ids = [...new Set(redeemed.map((o) => Number(o.goodsId)))];
  const names = new Map(
    (await sql<Array<{ id: number; name: string }>>`SELECT id, name FROM goods WHERE id = ANY(${ids}::bigint[])`).map((g) => [g.id, g.name]),
  );
  return pushes.enqueueMany(
    redeemed.map((o) => ({
      userId: o.userId,
      type: 'exchange_confirmation',
      title: 'Redemption confirmed',
      body: `${Number(o.quantity)} × ${names.get(Number(o.goodsId)) ?? `item ${o.goodsId}`} for ${-o.delta} points. Exchange number ${o.exchangeNo}.`,
      data: { redemptionId: o.opId, exchangeNo: String(o.exchangeNo), goodsId: String(o.goodsId) },
      dedupeKey: `exchange:${o.opId}`,
    })),
  );
}

export async function notifyTierUpgrades(ops: Op[], pushes: PushService, config: EngagementConfig): Promise<number> {
  let sent = 0;
  for (const op of ops) {
    if (op.tierFrom === undefined || op.tier === undefined || op.tier <= op.tierFrom) continue;
    const tier = config.tierAt(op.tier);
    const r = await pushes.enqueue(op.userId, {
      type: 'tier-upgrade',
      title: `Welcome to ${tier.name}`,
      body: `You reached ${tier.name}: earn ×${tier.earnPerMille / 1000} and redeem at ×${tier.pricePerMille / 1000} of the price.`,
      data: { tier: tier.name, position: String(op.tier) },
      dedupeKey: `tier:${op.userId}:${op.tier}`,
    });
    if (!r.duplicate) sent++;
  }
  return sent;
}

/**
 * Broadcasts each campaign that has started with `notify` on, once: the claim (notified_at) and
 * the broadcast's acceptance happen in one transaction, and the broadcast id is the campaign's,
 * so a run that dies after queueing and before committing is repeated harmlessly.
 */
export async function notifyStartedCampaigns(sql: Sql, campaigns: CampaignService, broadcasts: Broadcasts, batchSize: number): Promise<number> {
  return sql.begin(async (tx) => {
    const started = await campaigns.claimStarted(tx);
    for (const c of started) {
      await broadcasts.accept(
        c.name,
        `×${c.multiplier} points on ${c.bizTypes.join(', ')} until ${c.endsAt.slice(0, 16).replace('T', ' ')} UTC`,
        'all',
        batchSize,
        `campaign-${c.id}`,
      );
    }
    return started.length;
  });
}
