/**
 * Admin exports: GET /v1/admin/exports/redemptions and /ledger, ?from&to (business days) and
 * format=csv|xlsx, streamed as an attachment named after the kind and the window.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import { errors } from '../http/schemas.ts';
import { parseWindow } from '../analytics/window.ts';
import { CONTENT_TYPES, EXPORT_FORMATS, EXPORT_KINDS, ExportService, type ExportKind } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    exports: ExportService;
  }
}

export const exportsPlugin = fp(
  async (app) => {
    app.decorate(
      'exports',
      new ExportService(app.sql, { timeZone: app.config.BUSINESS_TIMEZONE, batch: app.config.EXPORT_BATCH, maxConcurrent: app.config.EXPORT_MAX_CONCURRENT }),
    );
  },
  { name: 'exports', dependencies: ['config', 'db'] },
);

const ExportQuerySchema = Type.Object(
  {
    from: Type.Optional(Type.String({ format: 'date', description: 'First business day (default: 29 days before `to`)' })),
    to: Type.Optional(Type.String({ format: 'date', description: 'Last business day, included (default: today)' })),
    format: Type.Union(
      EXPORT_FORMATS.map((f) => Type.Literal(f)),
      { default: 'csv' },
    ),
  },
  { additionalProperties: false },
);

const FileResponse = {
  description: 'The file, streamed (Content-Disposition: attachment; filename="<kind>_<from>_<to>.<format>")',
  content: {
    [CONTENT_TYPES.csv]: { schema: Type.String({ description: 'RFC 4180 CSV with a UTF-8 BOM and a header row' }) },
    [CONTENT_TYPES.xlsx]: { schema: Type.String({ format: 'binary', description: 'One worksheet with a header row' }) },
  },
};

const COLUMN_DOCS: Record<ExportKind, string> = {
  redemptions: 'Columns: exchange no, member (username), goods (name), quantity, points, time (UTC), status.',
  ledger: 'Columns: entry id, op id, member (username), kind, biz type, biz id, delta, balance after, time (UTC).',
};

const routes: FastifyPluginAsyncTypebox = async (app) => {
  for (const kind of EXPORT_KINDS) {
    app.get(
      `/v1/admin/exports/${kind}`,
      {
        onRequest: app.requireAdmin,
        schema: {
          tags: ['exports'],
          operationId: kind === 'redemptions' ? 'exportRedemptions' : 'exportLedger',
          summary: `Download the ${kind === 'redemptions' ? 'redemptions' : 'ledger entries'} of a window of business days as CSV or XLSX`,
          description:
            `${COLUMN_DOCS[kind]} Rows in time order, streamed through a database cursor (memory stays flat). ` +
            'A bad date, `from` after `to` or an unknown format is 400 VALIDATION_FAILED; more than EXPORT_MAX_CONCURRENT exports at once is 429 EXPORT_BUSY.',
          security: [{ bearer: [] }],
          querystring: ExportQuerySchema,
          response: { 200: FileResponse, ...errors(400, 401, 403, 429) },
        },
      },
      async (request, reply) => {
        const w = parseWindow(app.config.BUSINESS_TIMEZONE, request.query.from, request.query.to);
        const file = app.exports.open(kind, request.query.format, w);
        file.stream.on('error', (err) => request.log.error({ err, kind }, 'export failed mid-stream'));
        return reply
          .header('content-type', file.contentType)
          .header('content-disposition', `attachment; filename="${file.filename}"`)
          .header('cache-control', 'no-store')
          // the schema documents the file's bytes as a string; Fastify sends a stream as it comes
          .send(file.stream as unknown as string);
      },
    );
  }
};

export default routes;
