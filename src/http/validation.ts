/**
 * Request validation: bodies are checked strictly (no type coercion, no silently dropped extra
 * fields: a wrong type or an unknown field is a 400); params and querystrings arrive as strings,
 * so they are coerced to the schema's types. Body strings holding U+0000 or an unpaired surrogate are a
 * 400 too: Postgres text cannot store NUL and Lua's cjson refuses lone surrogates, so they would
 * otherwise fail deep inside a write (a 500, or a persist batch that can never commit).
 */
import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifySchema } from 'fastify';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM interop.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerceTypes: boolean): Ajv {
  const options: Options = {
    coerceTypes,
    removeAdditional: false,
    useDefaults: true,
    allErrors: false,
    strict: false,
  };
  return addFormats(new Ajv(options));
}

// NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Path of the first string (value or key) that Postgres / cjson cannot store, or null. */
export function unstorableText(value: unknown, path = 'body'): string | null {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : null;
  if (value === null || typeof value !== 'object') return null;
  for (const [k, v] of Object.entries(value)) {
    if (UNSTORABLE.test(k)) return path;
    const bad = unstorableText(v, `${path}/${k}`);
    if (bad) return bad;
  }
  return null;
}

export function installValidation(app: FastifyInstance): void {
  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }: { schema: FastifySchema; httpPart?: string }) => {
    if (httpPart !== 'body') return coercing.compile(schema as object);
    const validate = strict.compile(schema as object);
    // Fastify reads a failed check's errors off the function it was given: keep them in step.
    const check = Object.assign(
      (data: unknown) => {
        const bad = unstorableText(data);
        if (bad) {
          check.errors = [
            {
              instancePath: bad.slice('body'.length),
              schemaPath: '#',
              keyword: 'storable',
              params: {},
              message: 'must not contain NUL characters or unpaired surrogates',
            },
          ];
          return false;
        }
        const ok = validate(data);
        check.errors = validate.errors;
        return ok;
      },
      { errors: null as ErrorObject[] | null | undefined },
    );
    return check;
  });
}
