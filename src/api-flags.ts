/**
 * Node flags the API process runs with (npm start, npm run api, the image, compose, the bench):
 * a smaller young generation, 8 MB semi-spaces instead of V8's 16. Under a redemption load the
 * API's peak RSS went from 260–340 MB to about 240 MB, with throughput within the run-to-run
 * noise of this machine (measured in issue 11 with the bench, both ways back to back).
 */
export const API_NODE_FLAGS = ['--max-semi-space-size=8'];
