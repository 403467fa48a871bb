/**
 * ssh: what `--ssh` gives a RUN step — private key files read into memory (keys.ts) and the
 * per-mount agent socket (agent.ts) that forwards to the user's agent or answers the agent protocol
 * from those keys. Imports ../errors only; knows nothing of builds, images or the runtime.
 */
export { parsePrivateKey, type AgentKey } from './keys.ts';
export { serveAgent, type AgentSource, type ServedAgent } from './agent.ts';
