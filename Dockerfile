# syntax=docker/dockerfile:1
# One image for the API, the workers and the migrate step (docker-compose.yml builds it once and
# picks the process with `command`). The workers and the migrate step run their TypeScript through
# tsx, a production dependency; the API runs from its esbuild bundle, dist/api/server.mjs
# (src/cli/bundle.ts: tsx's loader thread cost the API ~40 MB of memory). The build stage installs
# everything, typechecks and bundles; the image carries production dependencies, the sources and
# the bundle.

# ---- build: every dependency, a typecheck that fails the build on a type error, the API bundle ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY workers ./workers
COPY lua ./lua
COPY drizzle ./drizzle
COPY console ./console
RUN npx tsc --noEmit && node --import tsx src/cli/bundle.ts

# ---- runtime: production dependencies only, the sources, a non-root user ----------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/tsconfig.json ./
COPY --from=build /app/src ./src
COPY --from=build /app/workers ./workers
COPY --from=build /app/lua ./lua
COPY --from=build /app/drizzle ./drizzle
COPY --from=build /app/console ./console
COPY --from=build /app/dist ./dist
# the node image's unprivileged user (uid 1000); the sources stay root-owned and read-only to it
USER node
EXPOSE 3000
# slim images have no curl: node's own fetch asks the API's liveness route (the workers and the
# migrate step override or disable this in docker-compose.yml)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself is PID 1's child under compose's `init: true`, and gets SIGTERM straight (no npm, no shell)
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=100", "dist/api/server.mjs"]
