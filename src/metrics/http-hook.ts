/**
 * The HTTP request histogram, fed by one onResponse hook per route that knows its own route
 * pattern (/v1/goods/:id, never the URL), added as each route is declared; requests no route
 * matched count under `unmatched`. Reading the pattern at response time (request.routeOptions)
 * builds a fresh options object per request, and prom-client's observe(labels, v) validates and
 * hashes the label object every time: here each (method, status) of a route has its labelled
 * child, found by a short string key.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import { httpDuration } from './registry.ts';
import { appendOnResponse } from '../http/route-hooks.ts';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function observerFor(route: string) {
  const children = new Map<string, { observe(v: number): void }>();
  return (request: FastifyRequest, reply: FastifyReply) => {
    const method = METHODS.has(request.method) ? request.method : 'OTHER';
    const status = reply.statusCode;
    const key = method + status;
    let child = children.get(key);
    if (!child) children.set(key, (child = httpDuration.labels({ route, method, status: String(status) })));
    child.observe(reply.elapsedTime / 1000);
  };
}

/** Call before any route is declared (routes declared earlier are not counted). */
export function installRequestMetrics(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const observe = observerFor(route.url);
    const hook: onResponseHookHandler = (request, reply, done) => {
      observe(request, reply);
      done();
    };
    appendOnResponse(route, hook);
  });
  const unmatched = observerFor('unmatched');
  app.addHook('onResponse', (request, reply, done) => {
    if (request.is404) unmatched(request, reply);
    done();
  });
}
