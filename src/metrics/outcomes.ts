/**
 * Hot-path outcomes: each answer of the reserve, charge and earn scripts counted by script and
 * result — `accepted`, or the code the API answers with (SOLD_OUT, INSUFFICIENT_POINTS, …; the
 * script's own name in CONSTANT_CASE for codes the services turn into something richer, e.g.
 * PRICE_CHANGED, EARN_BURST). The services count where they read the script's reply.
 */
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import { scriptOutcomes } from './registry.ts';

const constantCase = (name: string) => name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();

const RESULTS = new Map<number, string>(
  Object.entries(ScriptCode).map(([name, code]) => {
    const mapped = scriptError(code).code;
    return [code, mapped === 'INTERNAL' ? constantCase(name) : mapped];
  }),
);

export type HotScript = 'reserve' | 'charge' | 'earn' | 'redeem';

export function countOutcome(script: HotScript, code: number): void {
  scriptOutcomes.inc({ script, result: code === 1 ? 'accepted' : (RESULTS.get(code) ?? 'UNKNOWN') });
}
