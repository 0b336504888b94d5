// Figures 4 and 7: request rates — manifest HEAD and GET by tag from concurrent clients, and
// Berth's token issuance.
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { imageConfig, imageManifest, RegistryClient, sha256 } from '../client.ts';
import { basicAuth, keepAliveAgent, parseChallenge, send } from '../http.ts';
import { alternate, loadFor, timed, type FigureContext } from '../measure.ts';
import type { BenchServer } from '../servers.ts';

const REPOSITORY = 'bench/manifests';

/** Pushes the image whose manifest the clients fetch: a config, one 16 KiB layer, tag `latest`. */
async function pushImage(server: BenchServer): Promise<void> {
  const client = new RegistryClient(server, keepAliveAgent(1));
  const config = imageConfig(randomBytes(8).toString('hex'));
  const layer = randomBytes(16 * 1024);
  for (const blob of [config, layer]) await client.pushMonolithic(REPOSITORY, blob, sha256(blob));
  await client.putManifest(REPOSITORY, 'latest', imageManifest(config, [layer]));
  client.agent.destroy();
}

/**
 * Figure 4: `clients` concurrent clients, each with its own credentials (a token fetched once and
 * reused, with auth on), HEAD or GET `/v2/bench/manifests/manifests/latest` for a fixed window;
 * requests per second. With auth on only GET runs.
 */
export async function manifestRequests(ctx: FigureContext): Promise<void> {
  const n = ctx.scale.manifestClients;
  const pools = new Map<string, { agent: http.Agent; clients: RegistryClient[] }>();
  for (const server of ctx.servers) {
    await pushImage(server);
    const agent = keepAliveAgent(n);
    const clients = Array.from({ length: n }, () => new RegistryClient(server, agent));
    // Warm-up: open every connection and fetch every client's token before timing.
    await Promise.all(clients.map(async (c) => {
      for (let i = 0; i < 5; i++) await c.fetchManifest(REPOSITORY, 'latest', 'GET');
    }));
    pools.set(server.name, { agent, clients });
  }
  const methods: ('HEAD' | 'GET')[] = ctx.auth ? ['GET'] : ['HEAD', 'GET'];
  for (const method of methods) {
    const spec = { key: `manifest-${method.toLowerCase()}`, label: `manifest ${method} by tag, ${n} clients`, unit: 'req/s', better: 'higher' as const };
    await alternate(ctx, spec, ctx.scale.rounds, async (server) => {
      const { clients } = pools.get(server.name)!;
      const { result: done, usage } = await timed(server.pid, () =>
        loadFor(n, ctx.scale.windowMs, async (w) => void (await clients[w]!.fetchManifest(REPOSITORY, 'latest', method))),
      );
      return { value: done / usage.seconds, usage };
    }, { warmup: 1 });
  }
  for (const { agent } of pools.values()) agent.destroy();
}

/**
 * Figure 7 (Berth alone): token requests as docker sends them — GET the realm with Basic
 * credentials and a push scope — from `tokenClients` concurrent clients; tokens per second.
 */
export async function tokenIssuance(ctx: FigureContext): Promise<void> {
  const berth = ctx.servers.find((s) => s.name === 'berth');
  if (!berth) return;
  const agent = keepAliveAgent(ctx.scale.tokenClients);
  const ping = await send(agent, new URL('/v2/', berth.base), { method: 'GET' });
  const challenge = parseChallenge(ping.headers['www-authenticate'] as string | undefined);
  if (!challenge?.params['realm']) throw new Error(`Berth's /v2/ answered ${ping.status} without a realm`);
  const realm = new URL(challenge.params['realm'], berth.base);
  realm.searchParams.set('service', challenge.params['service'] ?? '');
  realm.searchParams.set('scope', 'repository:bench/token:pull,push');
  const authorization = basicAuth(berth.username, berth.password);
  const once = async () => {
    const reply = await send(agent, realm, { method: 'GET', headers: { Authorization: authorization }, keepBody: true });
    if (reply.status !== 200) throw new Error(`token request: ${reply.status} ${reply.body?.toString('utf8').slice(0, 200)}`);
  };
  for (let i = 0; i < ctx.scale.tokenClients; i++) await once(); // warm-up (argon2 once, then the login cache)
  const spec = { key: 'token', label: `token issuance (GET, Basic, push scope), ${ctx.scale.tokenClients} clients`, unit: 'tokens/s', better: 'higher' as const };
  await alternate(
    ctx,
    spec,
    ctx.scale.rounds,
    async (server) => {
      const { result: done, usage } = await timed(server.pid, () => loadFor(ctx.scale.tokenClients, ctx.scale.windowMs, once));
      return { value: done / usage.seconds, usage };
    },
    { servers: [berth], warmup: 1 },
  );
  agent.destroy();
}
