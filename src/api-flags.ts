/**
 * Node flags the API process runs with (npm start, npm run api, the image, compose, the bench),
 * both for its peak RSS under load:
 * - 8 MB semi-spaces instead of V8's 16: a smaller young generation. Under a redemption load the
 *   peak RSS went from 260–340 MB to about 240 MB, with throughput within the run-to-run noise of
 *   this machine (issue 11, the bench both ways back to back).
 * - `--heap-growing-percent=100`: the old generation may grow to twice what the last full GC
 *   left live before the next one, where V8 allows four times on a machine with this much memory.
 *   The API keeps ~40 MB live, but under load its old generation grew to ~150 MB of promoted
 *   garbage before V8 collected it. Measured back to back (bench hello+flash+redeem, two rounds
 *   each way): peak RSS 256–277 MB → 197–201 MB; in CPU profiles of the redeem scenario the
 *   collector's share of the API's time went from 9.0% / 7.9% to 9.7% / 8.9%.
 *   (A lower --max-old-space-size also cuts RSS, to ~160 MB, but V8 then lowers the growing
 *   factor towards 1.3 and the collector runs far more often.)
 */
export const API_NODE_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=100'];
