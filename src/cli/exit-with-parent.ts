/**
 * Preloaded (`--import`) into the API and worker processes that `npm start` runs: if the process
 * that started this one is gone — killed outright, so it could not stop its children — this one
 * stops as if sent SIGTERM, through its own graceful shutdown. Polled: Node has no parent-death
 * signal. One signal only: a second would force the exit (src/shutdown.ts).
 */
const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(watch);
  process.kill(process.pid, 'SIGTERM');
}, 500);
watch.unref();
