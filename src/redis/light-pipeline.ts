/**
 * Cheaper pipelines for a client with many scripts. ioredis's Pipeline constructor copies every
 * defined script onto each new pipeline (two methods and a SHA entry per script: ~80 own
 * properties with our 39 scripts), and auto-pipelining makes a pipeline per turn of the event
 * loop: on the API that is about one per request. Here the scripts' methods sit once on a
 * prototype shared by the client's pipelines, and each pipeline is built from a stand-in that has
 * no scripts to copy. What a pipeline does with a command is unchanged: the client's own methods
 * run with the pipeline as `this`, as they do on ioredis's per-pipeline copies.
 */
import { Pipeline } from 'ioredis';
import type { RedisClient } from './client.ts';

type Methods = Record<string, unknown>;
type Internals = {
  scriptsSet: Record<string, { sha: string }>;
  addedBuiltinSet: Set<string>;
  options: unknown;
  isCluster?: boolean;
  defineCommand(name: string, definition: unknown): void;
  addBuiltinCommand(name: string): void;
};

export function lightPipelines(redis: RedisClient): void {
  const client = redis as unknown as Internals & Methods;
  // what ioredis's constructor reads from its client, minus the scripts (isCluster: a Cluster
  // also answers to its constructor's name, which the stand-in does not have)
  const standIn = { scriptsSet: {}, addedBuiltinSet: new Set<string>(), options: client.options, isCluster: client.isCluster === true };
  let shaToScript: Record<string, unknown> = {};
  class ScriptedPipeline extends Pipeline {
    constructor() {
      super(standIn as never);
      const self = this as unknown as { redis: unknown; _shaToScript: unknown };
      self.redis = redis;
      self._shaToScript = shaToScript;
    }
  }
  const proto = ScriptedPipeline.prototype as unknown as Methods;
  // each script or added command, and its Buffer twin, read from the client when a pipeline uses
  // it: what ioredis copies at construction, and whatever wraps it later (the write gate's check,
  // src/recovery/redis-gate.ts) included
  const adopt = (name: string) => {
    for (const method of [name, `${name}Buffer`]) {
      if (!Object.prototype.hasOwnProperty.call(proto, method)) {
        Object.defineProperty(proto, method, { get: () => client[method], configurable: true });
      }
    }
  };
  const adoptAll = () => {
    const map: Record<string, unknown> = {};
    for (const [name, script] of Object.entries(client.scriptsSet)) {
      map[script.sha] = script;
      adopt(name);
    }
    for (const name of client.addedBuiltinSet) adopt(name);
    shaToScript = map;
  };
  adoptAll();
  // scripts defined later too (BullMQ defines its own on a connection it is given)
  const { defineCommand, addBuiltinCommand } = client;
  client.defineCommand = function (name, definition) {
    defineCommand.call(this, name, definition);
    adoptAll();
  };
  client.addBuiltinCommand = function (name) {
    addBuiltinCommand.call(this, name);
    adoptAll();
  };
  client.pipeline = function (commands?: unknown[][]) {
    const pipeline = new ScriptedPipeline();
    if (Array.isArray(commands)) pipeline.addBatch(commands);
    return pipeline;
  };
}
