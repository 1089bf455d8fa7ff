/**
 * One SIGTERM/SIGINT registry: handlers run once, in reverse registration order, then the
 * process exits. A second signal forces the exit.
 */
const handlers: Array<() => Promise<unknown>> = [];
let installed = false;
let closing = false;

export function onShutdown(handler: () => Promise<unknown>): void {
  handlers.push(handler);
  if (installed) return;
  installed = true;
  const run = async (signal: NodeJS.Signals) => {
    if (closing) {
      process.exit(1);
    }
    closing = true;
    let code = 0;
    for (const h of [...handlers].reverse()) {
      try {
        await h();
      } catch (err) {
        console.error(`shutdown (${signal}):`, err);
        code = 1;
      }
    }
    process.exit(code);
  };
  process.on('SIGTERM', (s) => void run(s));
  process.on('SIGINT', (s) => void run(s));
}
