/**
 * Adds an onResponse hook to one route as it is declared (from an onRoute hook), after the
 * route's own: the hook runs for that route only and knows it without reading
 * request.routeOptions, which builds a fresh object on every call.
 */
import type { onResponseHookHandler, RouteOptions } from 'fastify';

export function appendOnResponse(route: RouteOptions, hook: onResponseHookHandler): void {
  const own = route.onResponse;
  route.onResponse = own === undefined ? [hook] : [...(Array.isArray(own) ? own : [own]), hook];
}
