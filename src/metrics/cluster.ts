/**
 * Metrics across API processes (API_PROCESSES > 1, node:cluster). A scrape lands on one process;
 * that process asks the primary, the primary gathers every process's registry with prom-client's
 * AggregatorRegistry (over the cluster IPC channel: counters and histograms summed) and answers
 * with the text. Only the per-process registry travels; shared-state metrics are read once by
 * the answering process (src/metrics/state.ts).
 */
import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { registry } from './registry.ts';

const REQUEST = 'pm:metrics:request';
const ANSWER = 'pm:metrics:answer';
const TIMEOUT_MS = 5_000;

interface Answer {
  type: typeof ANSWER;
  id: number;
  text?: string;
  error?: string;
}

/** In the primary: answers the processes' requests with the aggregate of all of them. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, msg: { type?: string; id?: number }) => {
    if (msg?.type !== REQUEST) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: ANSWER, id: msg.id ?? -1, text } satisfies Answer),
      (err: Error) => worker.send({ type: ANSWER, id: msg.id ?? -1, error: err.message } satisfies Answer),
    );
  });
}

let joined = false;
let nextId = 0;
const pending = new Map<number, (a: Answer) => void>();

/** In a cluster process: lets the primary collect this registry, and listens for its answers. */
function join(): void {
  if (joined) return;
  joined = true;
  AggregatorRegistry.setRegistries([registry]);
  // constructing one installs prom-client's listener that hands this registry to the primary
  new AggregatorRegistry();
  process.on('message', (msg: Answer) => {
    if (msg?.type === ANSWER) pending.get(msg.id)?.(msg);
  });
}

export function inCluster(): boolean {
  return cluster.isWorker && typeof process.send === 'function';
}

/** The per-process metrics of every API process, summed by the primary. */
export function clusterMetrics(): Promise<string> {
  join();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error('the primary did not answer the metrics request'));
    }, TIMEOUT_MS);
    pending.set(id, (a) => {
      clearTimeout(timer);
      pending.delete(id);
      if (a.error !== undefined) reject(new Error(a.error));
      else resolve(a.text ?? '');
    });
    process.send!({ type: REQUEST, id });
  });
}

/** Joins at start, so the primary can collect this process before its first scrape here. */
export function joinCluster(): void {
  if (inCluster()) join();
}
