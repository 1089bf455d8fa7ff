/**
 * OpenAPI document at /docs/json and Swagger UI at /docs, generated from the route schemas.
 * OpenAPI 3.1: its schemas are JSON Schema, so TypeBox's numeric exclusiveMinimum/Maximum are
 * valid as written. Every route also documents the error statuses any route can answer
 * (src/http/common-responses.ts). `npm run lint:openapi` lints the document (redocly.yaml).
 */
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { addCommonResponses } from '../../http/common-responses.ts';

export default fp(
  async (app) => {
    // before any route is registered (routes come after the external plugins)
    app.addHook('onRoute', addCommonResponses);
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'Points Mall API', version: '1.0.0', description: 'Loyalty points and flash redemption' },
        // same origin as the document: wherever this instance is reached
        servers: [{ url: '/', description: 'this API' }],
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        },
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  },
  { name: 'swagger', dependencies: ['config'] },
);
